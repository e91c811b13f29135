// Real vocabularies from GGUF files, as the GGUF loader reads them (tokenizer.ggml.*), against
// transformers' GGUF tokenizer conversion (fixtures gguf-<name>/cases.json). The GGUF files are
// not in the repository; the tests run when the environment points at them:
//   FLAGOS_DEFAULT_MODEL        the Gemma 3 270M GGUF (scripts/fetch_default_model.sh) -> gguf-gemma3
//   FLAGOS_TOKENIZER_VOCAB_DIR  a folder with llama.cpp's ggml-vocab-<name>.gguf files (shipped in the
//                               llama-cpp-python source package under vendor/llama.cpp/models)
//                               -> gguf-llama-bpe (Llama 3), gguf-qwen2, gguf-gpt-2, gguf-llama-spm
//                               (Llama 2), gguf-phi-3
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "fixtures.h"
#include "flagos/tokenizer.h"
#include "model/gguf.h"
#include "model/loaders.h"

namespace flagos::model {
namespace {

using namespace testing_fixtures;

Tokenizer check_vocab(const std::string& gguf_path, const std::string& fixture) {
  auto t0 = std::chrono::steady_clock::now();
  Tokenizer tok(loaders::tokenizer_from_gguf(gguf::File::open(gguf_path)));
  std::printf("%s: %lld tokens, loaded in %.0f ms\n", fixture.c_str(), static_cast<long long>(tok.vocab_size()),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const auto cases = load_json(fixtures_dir() + "/" + fixture + "/cases.json");
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = c["ids_plain"].get<std::vector<int32_t>>();
    EXPECT_TRUE(same_ids(tok.encode(text, false, true), ids, text)) << fixture;
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << fixture << " " << nlohmann::json(text).dump();
  }
  return tok;
}

TEST(GgufVocab, DefaultModelGemma3) {
  const char* path = std::getenv("FLAGOS_DEFAULT_MODEL");
  if (!path || !*path) GTEST_SKIP() << "FLAGOS_DEFAULT_MODEL is not set";
  const Tokenizer tok = check_vocab(path, "gguf-gemma3");
  // Chat turns: <bos> first, the turn markers are control tokens, <end_of_turn> ends generation.
  const int32_t start = *tok.token_id("<start_of_turn>"), end = *tok.token_id("<end_of_turn>");
  const auto ids = tok.encode("<start_of_turn>user\nhi<end_of_turn>", true, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], tok.source().bos_id);
  EXPECT_EQ(ids[1], start);
  EXPECT_EQ(ids.back(), end);
  EXPECT_TRUE(tok.is_eog(end));
  EXPECT_TRUE(tok.is_eog(tok.source().eos_id));
  EXPECT_FALSE(tok.is_eog(start));
  EXPECT_EQ(tok.decode(ids, true), "user\nhi");
  EXPECT_FALSE(tok.source().add_space_prefix);
}

class GgufVocabDir : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufVocabDir, MatchesTransformers) {
  const char* dir = std::getenv("FLAGOS_TOKENIZER_VOCAB_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "FLAGOS_TOKENIZER_VOCAB_DIR is not set";
  const std::string path = std::string(dir) + "/ggml-vocab-" + GetParam() + ".gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  check_vocab(path, std::string("gguf-") + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, GgufVocabDir,
                         ::testing::Values("llama-bpe", "qwen2", "gpt-2", "llama-spm", "phi-3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace flagos::model
