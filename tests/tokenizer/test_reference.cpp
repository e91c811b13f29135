// Exact token ids against the Hugging Face `tokenizers` library and sentencepiece for the same
// tokenizer files (fixtures from scripts/gen_tokenizer_fixtures.py): encode with and without
// special tokens / special-token parsing, decode, streaming decode and round trips.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "flagos/tokenizer.h"

namespace flagos::model {
namespace {

using namespace testing_fixtures;

struct HfCase {
  const char* name;
  bool lossless;  // decode(encode(text)) == text for every text
};

class HfReference : public ::testing::TestWithParam<HfCase> {};

std::string streamed(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  Tokenizer::Stream s(tok, skip_special);
  std::string out;
  for (int32_t id : ids) out += s.push(id);
  return out + s.flush();
}

TEST_P(HfReference, MatchesTokenizersLibrary) {
  const std::string dir = fixtures_dir() + "/" + GetParam().name;
  const Tokenizer tok(Tokenizer::source_from_hf_json(dir + "/tokenizer.json", dir + "/tokenizer_config.json"));
  const auto cases = load_json(dir + "/cases.json");
  ASSERT_GT(cases.size(), 50u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_TRUE(same_ids(tok.encode(text, true, true), ids, text)) << "add_bos, parse_special";
    EXPECT_TRUE(same_ids(tok.encode(text, false, true), c["ids_plain"].get<std::vector<int32_t>>(), text))
        << "no bos, parse_special";
    const auto ids_no_parse = c["ids_no_parse"].get<std::vector<int32_t>>();
    EXPECT_TRUE(same_ids(tok.encode(text, false, false), ids_no_parse, text)) << "no bos, no parse_special";
    EXPECT_EQ(tok.decode(ids, false), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(tok.decode(ids, true), c["decoded_skip"].get<std::string>()) << text;
    EXPECT_EQ(streamed(tok, ids, false), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(streamed(tok, ids, true), c["decoded_skip"].get<std::string>()) << text;
    if (GetParam().lossless) {
      EXPECT_EQ(tok.decode(ids_no_parse), text);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfReference,
                         ::testing::Values(HfCase{"llama3", true}, HfCase{"qwen2", false}, HfCase{"gpt2", false},
                                           HfCase{"llama2", true}, HfCase{"llama2-metaspace", false},
                                           HfCase{"gemma", true}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// GGUF-like SentencePiece sources (tokens, scores, types) against sentencepiece's own ids.
std::shared_ptr<TokenizerSource> spm_source(const std::string& dir) {
  const auto j = load_json(dir + "/source.json");
  auto src = std::make_shared<TokenizerSource>();
  src->kind = TokenizerSource::Kind::spm;
  src->tokens = j["tokens"].get<std::vector<std::string>>();
  src->scores = j["scores"].get<std::vector<float>>();
  src->token_types = j["types"].get<std::vector<int32_t>>();
  src->add_space_prefix = j["add_space_prefix"];
  src->unk_id = j["unk_id"];
  src->bos_id = j["bos_id"];
  src->eos_id = j["eos_id"];
  src->add_bos = true;
  src->json_path = dir + "/source.json";
  return src;
}

class SpmReference : public ::testing::TestWithParam<const char*> {};

TEST_P(SpmReference, MatchesSentencePiece) {
  const std::string dir = fixtures_dir() + "/" + GetParam();
  const Tokenizer tok(spm_source(dir));
  const auto cases = load_json(dir + "/cases.json");
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    // sentencepiece parses user-defined pieces but not control ones: parse_special = false.
    EXPECT_TRUE(same_ids(tok.encode(text, false, false), ids, text));
    EXPECT_EQ(tok.decode(ids), c["decoded"].get<std::string>()) << text;
    EXPECT_EQ(streamed(tok, ids, false), c["decoded"].get<std::string>()) << text;
    auto with_bos = tok.encode(text, true, false);
    ASSERT_FALSE(with_bos.empty());
    EXPECT_EQ(with_bos[0], tok.source().bos_id);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SpmReference, ::testing::Values("llama2-spm", "gemma-spm"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// A byte-level source as the GGUF loader fills it (no patterns, no added-token list: the `pre`
// name and the token types) encodes like the tokenizer.json it came from.
TEST(GgufStyleSource, PreNameGivesTheSamePatterns) {
  for (const auto& [name, pre] : {std::pair{"llama3", "llama-bpe"}, std::pair{"qwen2", "qwen2"}}) {
    const std::string dir = fixtures_dir() + "/" + name;
    auto json_src = Tokenizer::source_from_hf_json(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
    auto gguf = std::make_shared<TokenizerSource>();
    gguf->kind = TokenizerSource::Kind::bpe;
    gguf->tokens = json_src->tokens;
    gguf->token_types = json_src->token_types;
    gguf->merges = json_src->merges;
    gguf->pre = pre;
    gguf->nfc = json_src->nfc;
    gguf->bos_id = json_src->bos_id;
    gguf->eos_id = json_src->eos_id;
    gguf->add_bos = json_src->add_bos;
    const Tokenizer a(json_src), b(gguf);
    for (const auto& c : load_json(dir + "/cases.json")) {
      const std::string text = c["text"];
      EXPECT_TRUE(same_ids(b.encode(text, true, true), a.encode(text, true, true), text)) << name;
      EXPECT_TRUE(same_ids(b.encode(text, false, false), c["ids_no_parse"].get<std::vector<int32_t>>(), text)) << name;
    }
  }
}

}  // namespace
}  // namespace flagos::model
