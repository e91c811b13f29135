// Pre-tokenization for byte-level BPE: a small backtracking regex engine over Unicode code points
// for the subset the tokenizer split patterns use, and the "Isolated" split of Hugging Face
// `tokenizers` (every match and every gap between matches becomes a piece).
//
// Supported syntax: literals, escapes \r \n \t \f \v \xHH \x{H..} \uHHHH and escaped punctuation;
// '.'; classes [...] / [^...] with ranges and \p{..} \P{..} \s \S \d \D inside; \p{L} \p{Lu} ...
// (one- and two-letter general categories, \p{^X} negated) and \s \S \d \D outside classes;
// groups ( ), (?: ), (?i: ) (Unicode simple case folding); alternation |; greedy quantifiers
// ? * + {m} {m,} {m,n}; lookahead (?= ) and (?! ). \s is White_Space, \d is Nd (as in Oniguruma).
// Anything else (anchors, backreferences, lazy/possessive quantifiers, \w, named groups, ...) is
// rejected with InvalidArgument naming the pattern.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flagos::model {

class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  const std::string& pattern() const;
  // Splits cps[0, n) into pieces [begin, end) (code point indices) the way a Split with behavior
  // "Isolated" does, appending them to `pieces`. Throws InvalidArgument when a match backtracks
  // far beyond what the text length allows (pathological patterns).
  void split(const char32_t* cps, size_t n, std::vector<std::pair<size_t, size_t>>& pieces) const;

  struct Program;

 private:
  std::string pattern_;
  std::unique_ptr<Program> prog_;
};

// A sequence of split patterns applied one after another to every piece of the previous one.
class PreTokenizer {
 public:
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  bool empty() const { return regexes_.empty(); }
  // Byte ranges [begin, end) of the pieces of `text`, in order, covering all of it.
  std::vector<std::pair<size_t, size_t>> split(std::string_view text) const;

 private:
  std::vector<Regex> regexes_;
};

// Split patterns of well-known pre-tokenizers (as written in the models' tokenizer.json files).
extern const char* const kPatternGpt2;    // GPT-2 (ByteLevel use_regex)
extern const char* const kPatternLlama3;  // Llama 3
extern const char* const kPatternQwen2;   // Qwen2 / Qwen2.5 / Qwen3

// Patterns for a GGUF tokenizer.ggml.pre name; InvalidArgument for names it does not know.
std::vector<std::string> patterns_for_pre(const std::string& pre);

}  // namespace flagos::model
