// Tokenizer behavior beyond the reference ids: streaming decode of characters split across byte
// tokens, special-token handling, end-of-generation ids, malformed tokenizer.json files and
// sources, and encoding a megabyte of text.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "fixtures.h"
#include "flagos/error.h"
#include "flagos/tokenizer.h"

namespace flagos::model {
namespace {

using namespace testing_fixtures;

Tokenizer from_fixture(const std::string& name) {
  const std::string dir = fixtures_dir() + "/" + name;
  return Tokenizer(Tokenizer::source_from_hf_json(dir + "/tokenizer.json", dir + "/tokenizer_config.json"));
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

TEST(Stream, EmojiSplitAcrossByteTokensComesOutWhole) {
  const std::string text = "a\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 \xF0\x9F\xA4\x96!";
  for (const char* name : {"llama3", "qwen2", "llama2", "gemma"}) {
    const Tokenizer tok = from_fixture(name);
    const auto ids = tok.encode(text, false);
    ASSERT_GT(ids.size(), 8u) << name << ": the emoji should take several byte tokens";
    Tokenizer::Stream s(tok, true);
    std::string out;
    int held = 0;  // pushes that returned nothing because a character was incomplete
    for (int32_t id : ids) {
      const std::string piece = s.push(id);
      EXPECT_TRUE(valid_utf8(piece)) << name << ": partial UTF-8 emitted";
      held += piece.empty();
      out += piece;
    }
    out += s.flush();
    EXPECT_EQ(out, text) << name;
    EXPECT_GT(held, 0) << name << ": some byte tokens must have been held back";
  }
}

TEST(Stream, TruncatedSequenceFlushesAsReplacement) {
  const Tokenizer tok = from_fixture("llama3");
  const auto ids = tok.encode("\xF0\x9F\xA4\x96", false);  // robot face: 3 tokens, the first ends mid-character
  ASSERT_GE(ids.size(), 2u);
  ASSERT_LT(tok.decode({ids[0]}).size(), 4u);
  Tokenizer::Stream s(tok, false);
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode({ids[0]}), "\xEF\xBF\xBD");
  // A new character after a broken one: the broken bytes become U+FFFD, the rest goes through.
  Tokenizer::Stream t(tok, false);
  EXPECT_EQ(t.push(ids[0]), "");
  EXPECT_EQ(t.push(tok.encode("A", false)[0]), "\xEF\xBF\xBD" "A");
}

TEST(Tokenizer, SpecialTokensAndEndOfGeneration) {
  const Tokenizer q = from_fixture("qwen2");
  const int32_t im_start = *q.token_id("<|im_start|>"), im_end = *q.token_id("<|im_end|>");
  const int32_t eot = *q.token_id("<|endoftext|>"), think = *q.token_id("<think>");
  auto ids = q.encode("<|im_start|>user<|im_end|><think>", true, true);
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_NE(std::find(ids.begin(), ids.end(), im_end), ids.end());
  EXPECT_EQ(ids.back(), think);
  auto plain = q.encode("<|im_start|>user<|im_end|><think>", true, false);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), im_start), plain.end()) << "parse_special=false: text only";
  EXPECT_EQ(plain.back(), think) << "non-special added tokens are still matched";
  EXPECT_TRUE(q.is_special(im_start));
  EXPECT_FALSE(q.is_special(think));
  EXPECT_TRUE(q.is_eog(im_end));
  EXPECT_TRUE(q.is_eog(eot));
  EXPECT_FALSE(q.is_eog(im_start));
  EXPECT_EQ(q.source().eos_id, im_end);
  EXPECT_FALSE(q.source().add_bos);
  EXPECT_EQ(q.decode(ids, true), "user<think>");

  const Tokenizer l = from_fixture("llama3");
  EXPECT_TRUE(l.is_eog(*l.token_id("<|eot_id|>")));
  EXPECT_EQ(l.encode("hi").front(), *l.token_id("<|begin_of_text|>"));
  EXPECT_NE(l.encode("hi", false).front(), *l.token_id("<|begin_of_text|>"));
  EXPECT_EQ(l.token_text(*l.token_id("<|eot_id|>")), "<|eot_id|>");
  EXPECT_FALSE(l.token_id("no such token").has_value());
  EXPECT_THROW(l.decode({0, static_cast<int32_t>(l.vocab_size())}), InvalidArgument);
  EXPECT_THROW(l.decode({-1}), InvalidArgument);
  EXPECT_THROW(l.token_text(-1), InvalidArgument);

  const Tokenizer g = from_fixture("gemma");
  EXPECT_EQ(g.source().bos_id, *g.token_id("<bos>"));
  EXPECT_TRUE(g.is_eog(*g.token_id("<eos>")));
  EXPECT_FALSE(g.source().add_space_prefix);
}

TEST(Tokenizer, EncodesAMegabyteQuickly) {
  // Mixed text; prints the time (no timing assert). Merges are O(n log n): one 1 MB "word" too.
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const std::vector<std::string> words = {"the ", "tokenizer ", "\xE4\xB8\xAD\xE6\x96\x87", "caf\xC3\xA9 ", "1234 ",
                                          "\n", "    ", "x", "\xF0\x9F\x98\x80", "don't ", "IT'S "};
  std::string text;
  while (text.size() < (1u << 20)) text += words[rng() % words.size()];
  for (const char* name : {"llama3", "qwen2", "llama2", "gemma"}) {
    const Tokenizer tok = from_fixture(name);
    auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, false);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s: %zu bytes -> %zu tokens in %.1f ms\n", name, text.size(), ids.size(), ms);
    EXPECT_EQ(tok.decode(ids), text) << name;
  }
  // SentencePiece from scores: one megabyte without spaces is a single word.
  const Tokenizer tok = from_fixture("gemma");
  const std::string word(1 << 20, 'a');
  auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(word, false);
  std::printf("gemma, 1 MiB of 'a': %zu tokens in %.1f ms\n", ids.size(),
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  EXPECT_EQ(tok.decode(ids), word);
}

// Malformed files: InvalidArgument naming the file and the field.
void expect_invalid(const std::string& json, const std::string& field, const std::string& config = "") {
  try {
    Tokenizer::source_from_hf_json_text(json, config, "bad.json");
    ADD_FAILURE() << "accepted: " << json;
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(field), std::string::npos) << "expected field '" << field << "' in: " << msg;
  }
}

std::string byte_level_json(const std::string& model_extra, const std::string& pre = "") {
  const std::string pre_tok = pre.empty() ? R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})" : pre;
  return R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2})" + model_extra +
         R"(}, "pre_tokenizer": )" + pre_tok + R"(, "decoder": {"type": "ByteLevel"}})";
}

TEST(TokenizerJson, MalformedFilesNameFileAndField) {
  EXPECT_NO_THROW(Tokenizer::source_from_hf_json_text(byte_level_json(R"(, "merges": ["a b"])"), "", "ok.json"));
  expect_invalid("{\"model\": ", "invalid JSON");
  expect_invalid("[1, 2]", "top level");
  expect_invalid(R"({"normalizer": null})", "model");
  expect_invalid(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "model.type");
  expect_invalid(R"({"model": {"type": "BPE"}})", "model.vocab");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {}}, "pre_tokenizer": {"type": "ByteLevel"}})", "model.vocab");
  expect_invalid(byte_level_json(R"(, "merges": ["a c"])"), "model.merges[0]");
  expect_invalid(byte_level_json(R"(, "merges": ["a b", "b a"])"), "model.merges[1]");  // "ba" is not a token
  expect_invalid(byte_level_json(R"(, "merges": ["a b", "b"])"), "model.merges[1]");
  expect_invalid(byte_level_json(R"(, "merges": [["a"]])"), "model.merges[0]");
  expect_invalid(byte_level_json(R"(, "merges": 7)"), "model.merges");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": -1}}})", "model.vocab");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 99999999999}}})", "model.vocab");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}})", "model.vocab");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}})", "model.vocab");
  expect_invalid(byte_level_json("", R"J({"type": "Split", "pattern": {"Regex": "(?<x>a)"}, "behavior": "Isolated"})J"),
                 "pre_tokenizer.pattern");
  expect_invalid(byte_level_json("", R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "[a"}, "behavior": "Isolated"}]})"),
                 "pre_tokenizer.pretokenizers[0].pattern");
  expect_invalid(byte_level_json("", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Removed"})"),
                 "pre_tokenizer.behavior");
  expect_invalid(byte_level_json("", R"({"type": "Whitespace"})"), "pre_tokenizer.type");
  expect_invalid(byte_level_json(R"(, "unk_token": "<unk>")"), "model.unk_token");
  expect_invalid(byte_level_json(R"(, "continuing_subword_prefix": "##")"), "model.continuing_subword_prefix");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "normalizer": {"type": "Lowercase"}})",
                 "normalizer.type");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})", "pre_tokenizer");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"id": 5}]})",
                 "added_tokens[0].content");
  expect_invalid(byte_level_json("").insert(1, R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]}, )"),
                 "post_processor.single");
  expect_invalid(byte_level_json(""), "eos_token", R"({"eos_token": "</s>"})");
  expect_invalid(byte_level_json(""), "invalid JSON", "{");
  // Hostile shapes: deep nesting (the walkers recurse) and a huge id with few tokens (allocation).
  std::string deep = R"({"type": "NFC"})";
  for (int i = 0; i < 2000; ++i) deep = R"({"type": "Sequence", "normalizers": [)" + deep + "]}";
  expect_invalid(byte_level_json("").insert(1, "\"normalizer\": " + deep + ", "), "nested");
  expect_invalid(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 16000000}}})", "model.vocab");
}

TEST(TokenizerJson, MissingFileNamesThePath) {
  try {
    Tokenizer::source_from_hf_json("/nonexistent/tokenizer.json");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

TEST(TokenizerSource, InvalidSourcesAreRejected) {
  auto base = [] {
    auto s = std::make_shared<TokenizerSource>();
    s->kind = TokenizerSource::Kind::spm;
    s->tokens = {"<unk>", "a", "b", "ab"};
    s->json_path = "model.gguf";
    return s;
  };
  auto expect_bad = [](std::shared_ptr<TokenizerSource> s, const char* field) {
    try {
      Tokenizer t(s);
      ADD_FAILURE() << "accepted, expected an error about " << field;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("model.gguf"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(Tokenizer{base()});
  auto s = base();
  s->tokens.clear();
  expect_bad(s, "tokens");
  s = base();
  s->scores = {1.0f};
  expect_bad(s, "scores");
  s = base();
  s->token_types = {1, 1, 9, 1};
  expect_bad(s, "token_types[2]");
  s = base();
  s->eos_id = 4;
  expect_bad(s, "eos_id");
  s = base();
  s->eos_ids = {-7};
  expect_bad(s, "eos_ids");
  s = base();
  s->merges = {{"a", "c"}};
  expect_bad(s, "merges[0]");
  s = base();
  s->kind = TokenizerSource::Kind::bpe;
  s->pre = "no-such-pre";
  expect_bad(s, "no-such-pre");
  s = base();
  s->kind = TokenizerSource::Kind::bpe;
  s->pretokenizer_patterns = {"(unclosed"};
  expect_bad(s, "(unclosed");
}

}  // namespace
}  // namespace flagos::model
