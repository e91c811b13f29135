// Pre-tokenizer regex engine: pieces of the GPT-2 / Llama 3 / Qwen2 split patterns against the
// `tokenizers` library's Split pre-tokenizer (fixture pretokenize.json, incl. random code points
// from all of Unicode), syntax the engine accepts and rejects, and bounded backtracking.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "fixtures.h"
#include "flagos/error.h"
#include "model/pretokenize.h"

namespace flagos::model {
namespace {

using namespace testing_fixtures;

std::vector<std::string> pieces(const std::string& pattern, const std::string& text) {
  PreTokenizer p({pattern});
  std::vector<std::string> out;
  for (auto [b, e] : p.split(text)) out.push_back(text.substr(b, e - b));
  return out;
}

TEST(Regex, MatchesTokenizersSplit) {
  const auto fx = load_json(fixtures_dir() + "/pretokenize.json");
  const auto texts = fx["texts"].get<std::vector<std::string>>();
  ASSERT_GT(texts.size(), 200u);
  for (const auto& [name, pattern] : {std::pair{"gpt2", kPatternGpt2}, std::pair{"llama3", kPatternLlama3},
                                      std::pair{"qwen2", kPatternQwen2}}) {
    const auto& want = fx["pieces"][name];
    ASSERT_EQ(want.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i)
      EXPECT_EQ(pieces(pattern, texts[i]), want[i].get<std::vector<std::string>>())
          << name << " text #" << i << " " << nlohmann::json(texts[i]).dump();
  }
}

TEST(Regex, HandCheckedPieces) {
  EXPECT_EQ(pieces(kPatternGpt2, "Hello world's  end  "),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " end", "  "}));
  EXPECT_EQ(pieces(kPatternLlama3, "IT'S 12345\n\n  x"),
            (std::vector<std::string>{"IT", "'S", " ", "123", "45", "\n\n", " ", " x"}));
  EXPECT_TRUE(pieces(kPatternLlama3, "").empty());
}

TEST(Regex, Syntax) {
  EXPECT_EQ(pieces(R"(a{2,3})", "aaaaaaa"), (std::vector<std::string>{"aaa", "aaa", "a"}));
  EXPECT_EQ(pieces(R"((?:ab)+)", "ababxab"), (std::vector<std::string>{"abab", "x", "ab"}));
  EXPECT_EQ(pieces(R"([a-c]+|\d)", "abcd12"), (std::vector<std::string>{"abc", "d", "1", "2"}));
  EXPECT_EQ(pieces(R"([^\s]+)", "ab  c"), (std::vector<std::string>{"ab", "  ", "c"}));
  EXPECT_EQ(pieces(R"(\x41|\u00e9|\x{1F600})", "A\xC3\xA9\xF0\x9F\x98\x80"),
            (std::vector<std::string>{"A", "\xC3\xA9", "\xF0\x9F\x98\x80"}));
  EXPECT_EQ(pieces(R"(a(?=b)|b)", "abac"), (std::vector<std::string>{"a", "b", "ac"}));
  EXPECT_EQ(pieces(R"((?i:straSSe))", "STRASSE"), (std::vector<std::string>{"STRASSE"}));
  EXPECT_EQ(pieces(R"(\p{Lu}\p{Ll}*|\P{L}+)", "HeLLo 42"),
            (std::vector<std::string>{"He", "L", "Lo", " 42"}));
  EXPECT_EQ(pieces(R"(.)", "a\nb"), (std::vector<std::string>{"a", "\n", "b"}));
}

TEST(Regex, RejectsUnsupportedSyntaxNamingThePattern) {
  for (const char* bad : {"^a", "a$", "a*?", "a++", "\\w+", "\\bfoo", "(?<n>a)", "(?i)a", "[[a]]", "a{3,2}",
                          "(a", "a)", "[a", "\\p{Greek}", "*a", "(?:)*", "a{1001}", "\\", "\\x{110000}"}) {
    try {
      Regex r(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(Regex, PathologicalBacktrackingIsBounded) {
  // Exponential for a plain backtracker; must stop with an error, not hang.
  PreTokenizer p({"(?:a|a)+(?:a|a)+(?:a|a)+b"});
  EXPECT_THROW(p.split(std::string(40, 'a')), InvalidArgument);
}

TEST(Regex, LongRunsAreLinear) {
  // One megabyte of letters / spaces / digits in one run: no per-character stack, no quadratic scan.
  for (char c : {'a', ' ', '7', '\n'}) {
    const std::string text(1 << 20, c);
    const auto t0 = std::chrono::steady_clock::now();
    const auto p = PreTokenizer({kPatternLlama3}).split(text);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    size_t covered = 0;
    for (auto [b, e] : p) covered += e - b;
    EXPECT_EQ(covered, text.size());
    std::printf("llama3 split of 1 MiB of '%s': %zu pieces, %.1f ms\n", c == '\n' ? "\\n" : std::string(1, c).c_str(),
                p.size(), ms);
  }
}

TEST(Regex, RandomTextsCoverTheInput) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  const std::vector<std::string> atoms = {"a", "Z", " ", "  ", "\t", "\n", "\r\n", "'", "'s", "1", "23", "\xC3\xA9",
                                          "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xCC\x81", "!", "\xC2\xA0", "\xFF"};
  for (int i = 0; i < 500; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += atoms[rng() % atoms.size()];
    for (const char* pat : {kPatternGpt2, kPatternLlama3, kPatternQwen2}) {
      std::string joined;
      size_t last = 0;
      for (auto [b, e] : PreTokenizer({pat}).split(text)) {
        ASSERT_EQ(b, last);
        ASSERT_LT(b, e);
        joined += text.substr(b, e - b);
        last = e;
      }
      EXPECT_EQ(joined, text);
    }
  }
}

}  // namespace
}  // namespace flagos::model
