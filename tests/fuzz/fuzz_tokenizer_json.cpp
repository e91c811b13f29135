// libFuzzer target: bytes as tokenizer.json text -> TokenizerSource -> Tokenizer, which then
// encodes and decodes a fixed string. flagos::Error is an accepted outcome.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flagos/error.h"
#include "flagos/tokenizer.h"

using namespace flagos;
using namespace flagos::model;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto src = Tokenizer::source_from_hf_json_text(std::string_view(reinterpret_cast<const char*>(data), size), {},
                                                   "fuzz/tokenizer.json");
    const Tokenizer tok(src);
    const auto ids = tok.encode("Hello world! 123 h\xC3\xA9llo <|im_start|>user\n\xF0\x9F\x99\x82  end", true, true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
    Tokenizer::Stream stream(tok, true);
    for (int32_t id : ids) (void)stream.push(id);
    (void)stream.flush();
  } catch (const Error&) {
  }
  return 0;
}
