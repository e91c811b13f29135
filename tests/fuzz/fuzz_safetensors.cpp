// libFuzzer target: bytes as a safetensors file (header, offsets, every tensor read) and as a
// config.json text (ModelConfig parsing and checks). flagos::Error is an accepted outcome.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "flagos/error.h"
#include "model/loaders.h"
#include "model/safetensors.h"

using namespace flagos;
using namespace flagos::model;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const safetensors::File f =
        safetensors::File::parse(MappedFile::from_memory("fuzz.safetensors", std::vector<uint8_t>(data, data + size)));
    double sum = 0;
    for (const auto& ti : f.tensors()) {
      const Tensor t = f.tensor(ti);
      if (t.numel() > 0 && t.numel() <= 64) {
        for (double x : t.to_vector<double>()) sum += x;
      }
    }
    (void)sum;
  } catch (const Error&) {
  }
  try {
    const ModelConfig c = loaders::config_from_hf_json(std::string(reinterpret_cast<const char*>(data), size), "config.json");
    loaders::validate_config(c, "config.json");
    (void)expected_weights(c);
  } catch (const Error&) {
  }
  return 0;
}
