// libFuzzer target: GGUF bytes -> parser, every metadata value decoded, every tensor viewed and
// read, then the GGUF model loader (config, tokenizer metadata, names, weight checks). Any
// flagos::Error is an accepted outcome; crashes, sanitizer reports, leaks and hangs are not.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flagos/error.h"
#include "model/gguf.h"
#include "model/loaders.h"

using namespace flagos;
using namespace flagos::model;

namespace {

void touch(const gguf::Value& v, int depth) {
  (void)v.describe();
  if (v.type() != gguf::ValueType::array) return;
  switch (v.elem_type()) {
    case gguf::ValueType::string: (void)v.as_strings(); break;
    case gguf::ValueType::boolean: (void)v.as_bools(); break;
    case gguf::ValueType::array:
      if (depth < 3)
        for (const auto& e : v.elements()) touch(e, depth + 1);
      break;
    case gguf::ValueType::f32: case gguf::ValueType::f64: (void)v.as_doubles(); break;
    default:
      try {
        (void)v.as_ints();  // u64 values past INT64_MAX throw
      } catch (const Error&) {
      }
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const gguf::File f = gguf::File::parse(MappedFile::from_memory("fuzz.gguf", std::vector<uint8_t>(data, data + size)));
    for (const auto& [key, value] : f.metadata()) touch(value, 0);
    uint64_t sum = 0;
    for (const auto& ti : f.tensors()) {
      const Tensor t = f.tensor(ti);
      const auto* p = static_cast<const uint8_t*>(t.data());
      if (ti.nbytes) sum += p[0] + p[ti.nbytes - 1];  // the whole range is inside the input
    }
    (void)sum;
    LoadedModel lm = loaders::load_gguf(f, LoadOptions{});
    validate_weights(lm.config, lm.weights);
  } catch (const Error&) {
  }
  return 0;
}
