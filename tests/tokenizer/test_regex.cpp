// Pre-tokenizer regex engine: the split patterns on hand-checked inputs, and rejected syntax.
#include <gtest/gtest.h>

#include "flagos/error.h"
#include "model/pretokenize.h"

namespace flagos::model {
namespace {

std::vector<std::string> pieces(const std::string& pattern, const std::string& text) {
  PreTokenizer p({pattern});
  std::vector<std::string> out;
  for (auto [b, e] : p.split(text)) out.push_back(text.substr(b, e - b));
  return out;
}

TEST(Regex, Gpt2Pattern) {
  EXPECT_EQ(pieces(kPatternGpt2, "Hello world's  end  "),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " end", "  "}));
}

}  // namespace
}  // namespace flagos::model
