// Pre-tokenization regexes (see pretokenize.h): parser -> syntax tree -> small program run by a
// backtracking machine with an explicit stack. Greedy repetitions of a single character class
// (the common case: \p{L}+, \s*, \p{N}{1,3}) are one instruction that backtracks by count, so
// long runs of letters or spaces cost no stack per character.
#include "model/pretokenize.h"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <optional>

#include "flagos/error.h"
#include "model/unicode.h"

namespace flagos::model {

const char* const kPatternGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kPatternLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kPatternQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> patterns_for_pre(const std::string& pre) {
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe")
    return {kPatternLlama3};
  if (pre == "qwen2" || pre == "qwen35" || pre == "deepseek-r1-qwen") return {kPatternQwen2};
  if (pre == "gpt2" || pre == "gpt-2" || pre == "default" || pre.empty()) return {kPatternGpt2};
  fail("unknown tokenizer pre-tokenizer name '", pre,
       "' (known: llama-bpe, llama3, smaug-bpe, qwen2, qwen35, deepseek-r1-qwen, gpt2, default)");
}

namespace {

using unicode::Category;

constexpr uint32_t kInfinite = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kMaxRepeat = 1000;        // largest {m,n} bound accepted
constexpr size_t kMaxProgram = 100000;       // instructions after expanding counted repeats
constexpr size_t kMaxNesting = 100;          // group nesting depth
constexpr uint64_t kStepsPerCodePoint = 2000;  // backtracking budget per code point of a split

constexpr uint32_t cat_bit(Category c) { return uint32_t{1} << static_cast<int>(c); }
constexpr uint32_t kLetters = cat_bit(Category::Lu) | cat_bit(Category::Ll) | cat_bit(Category::Lt) |
                              cat_bit(Category::Lm) | cat_bit(Category::Lo);
constexpr uint32_t kMarks = cat_bit(Category::Mn) | cat_bit(Category::Mc) | cat_bit(Category::Me);
constexpr uint32_t kNumbers = cat_bit(Category::Nd) | cat_bit(Category::Nl) | cat_bit(Category::No);
constexpr uint32_t kPunct = cat_bit(Category::Pc) | cat_bit(Category::Pd) | cat_bit(Category::Ps) |
                            cat_bit(Category::Pe) | cat_bit(Category::Pi) | cat_bit(Category::Pf) |
                            cat_bit(Category::Po);
constexpr uint32_t kSymbols = cat_bit(Category::Sm) | cat_bit(Category::Sc) | cat_bit(Category::Sk) |
                              cat_bit(Category::So);
constexpr uint32_t kSeparators = cat_bit(Category::Zs) | cat_bit(Category::Zl) | cat_bit(Category::Zp);
constexpr uint32_t kOther = cat_bit(Category::Cc) | cat_bit(Category::Cf) | cat_bit(Category::Cs) |
                            cat_bit(Category::Co) | cat_bit(Category::Cn);

// Mask of a \p{...} property name; 0 when unknown.
uint32_t category_mask(std::u32string_view name) {
  static constexpr std::pair<const char*, uint32_t> kGroups[] = {
      {"L", kLetters}, {"M", kMarks}, {"N", kNumbers}, {"P", kPunct}, {"S", kSymbols},
      {"Z", kSeparators}, {"C", kOther},
      {"LC", cat_bit(Category::Lu) | cat_bit(Category::Ll) | cat_bit(Category::Lt)},
      {"L&", cat_bit(Category::Lu) | cat_bit(Category::Ll) | cat_bit(Category::Lt)}};
  static constexpr const char* kNames[] = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl",
                                           "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc",
                                           "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
  auto equals = [&](const char* s) {
    size_t i = 0;
    for (; s[i] != 0; ++i)
      if (i >= name.size() || name[i] != static_cast<char32_t>(s[i])) return false;
    return i == name.size();
  };
  for (const auto& [n, mask] : kGroups)
    if (equals(n)) return mask;
  for (int i = 0; i < unicode::kNumCategories; ++i)
    if (equals(kNames[i])) return uint32_t{1} << i;
  return 0;
}

// One character class: a code point matches when any item matches (then `negated` flips it).
struct CharSet {
  std::vector<std::pair<char32_t, char32_t>> ranges;
  uint32_t categories = 0;                  // \p{..} items
  std::vector<uint32_t> not_categories;     // \P{..} items, one mask each
  bool space = false, not_space = false;    // \s, \S items
  bool any_but_newline = false;             // '.'
  bool negated = false;
  bool ignore_case = false;
  std::array<uint64_t, 2> ascii{};          // precomputed answer for code points < 128

  bool items_match(char32_t c) const {
    for (const auto& [lo, hi] : ranges)
      if (c >= lo && c <= hi) return true;
    const uint32_t bit = uint32_t{1} << static_cast<int>(unicode::category(c));
    if (categories & bit) return true;
    for (uint32_t m : not_categories)
      if (!(m & bit)) return true;
    if (space && unicode::is_white_space(c)) return true;
    if (not_space && !unicode::is_white_space(c)) return true;
    if (any_but_newline && c != '\n') return true;
    return false;
  }
  bool slow_match(char32_t c) const {
    bool m = items_match(c);
    if (!m && ignore_case) {
      const char32_t f = unicode::simple_fold(c);
      m = (f != c && items_match(f));
      if (!m) {
        std::vector<char32_t> variants;
        unicode::append_fold_sources(f, variants);
        for (char32_t v : variants)
          if (v != c && items_match(v)) { m = true; break; }
      }
    }
    return m != negated;
  }
  void finalize() {
    for (char32_t c = 0; c < 128; ++c)
      if (slow_match(c)) ascii[c >> 6] |= uint64_t{1} << (c & 63);
  }
  bool matches(char32_t c) const {
    if (c < 128) return (ascii[c >> 6] >> (c & 63)) & 1;
    return slow_match(c);
  }
};

struct Node {
  enum class Kind { set, seq, alt, repeat, look };
  explicit Node(Kind k) : kind(k) {}
  Kind kind;
  uint32_t set = 0;
  std::vector<Node> children;
  uint32_t min = 1, max = 1;
  bool negate = false;  // look: negative lookahead
};

enum class Op : uint8_t { set, split, jmp, repeat_set, look, match };
struct Inst {
  Op op;
  bool negate = false;
  uint32_t a = 0, b = 0;  // set: a = set; split: a preferred, b other; jmp: a; look: a sub, b next
  uint32_t min = 0, max = 0;
};

// Recursive-descent parser over the pattern's code points.
class Parser {
 public:
  Parser(const std::string& pattern, std::vector<CharSet>& sets) : pattern_(pattern), sets_(sets) {
    for (size_t pos = 0; pos < pattern.size();) {
      const char32_t c = unicode::next_code_point(pattern, pos);
      if (c >= unicode::kInvalidBase) error("invalid UTF-8");
      p_.push_back(c);
    }
  }
  Node parse() {
    Node n = alternation(false, 0);
    if (i_ < p_.size()) error("unbalanced ')'");
    return n;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("pre-tokenizer regex: ", what, " at offset ", i_, " in pattern '", pattern_, "'");
  }
  bool more() const { return i_ < p_.size(); }
  char32_t peek(size_t k = 0) const { return i_ + k < p_.size() ? p_[i_ + k] : 0; }
  bool accept(char32_t c) {
    if (more() && p_[i_] == c) { ++i_; return true; }
    return false;
  }

  Node alternation(bool ci, size_t depth) {
    if (depth > kMaxNesting) error("groups nested too deeply");
    Node alt(Node::Kind::alt);
    alt.children.push_back(sequence(ci, depth));
    while (accept('|')) alt.children.push_back(sequence(ci, depth));
    return alt.children.size() == 1 ? std::move(alt.children[0]) : alt;
  }

  Node sequence(bool ci, size_t depth) {
    Node seq(Node::Kind::seq);
    while (more() && peek() != '|' && peek() != ')') {
      Node atom = this->atom(ci, depth);
      quantifier(atom);
      seq.children.push_back(std::move(atom));
    }
    return seq;
  }

  Node atom(bool ci, size_t depth) {
    const char32_t c = p_[i_++];
    switch (c) {
      case '(': return group(ci, depth);
      case '[': return make_set(char_class(ci));
      case '.': {
        CharSet s;
        s.any_but_newline = true;
        return make_set(std::move(s));
      }
      case '\\': {
        CharSet s;
        s.ignore_case = ci;
        escape(s, /*in_class=*/false);
        return make_set(std::move(s));
      }
      case '^': case '$': error("anchors are not supported");
      case '*': case '+': case '?': case '{': error("quantifier without an operand");
      case ']': case '}': error("unescaped bracket");
      default: {
        CharSet s;
        s.ignore_case = ci;
        s.ranges.push_back({c, c});
        return make_set(std::move(s));
      }
    }
  }

  Node group(bool ci, size_t depth) {
    bool look = false, negate = false;
    if (accept('?')) {
      if (accept(':')) {
      } else if (accept('!')) {
        look = negate = true;
      } else if (accept('=')) {
        look = true;
      } else if (peek() == 'i' && peek(1) == ':') {
        i_ += 2;
        ci = true;
      } else {
        error("unsupported group syntax '(?'");
      }
    }
    Node body = alternation(ci, depth + 1);
    if (!accept(')')) error("missing ')'");
    if (!look) return body;
    Node n(Node::Kind::look);
    n.negate = negate;
    n.children.push_back(std::move(body));
    return n;
  }

  void quantifier(Node& atom) {
    uint32_t min = 0, max = 0;
    if (accept('?')) {
      min = 0, max = 1;
    } else if (accept('*')) {
      min = 0, max = kInfinite;
    } else if (accept('+')) {
      min = 1, max = kInfinite;
    } else if (peek() == '{') {
      ++i_;
      min = number();
      max = min;
      if (accept(',')) max = peek() == '}' ? kInfinite : number();
      if (!accept('}')) error("malformed {m,n} quantifier");
      if (max < min) error("quantifier {m,n} with n < m");
    } else {
      return;
    }
    if (peek() == '?' || peek() == '+') error("lazy and possessive quantifiers are not supported");
    if (peek() == '*' || peek() == '{') error("nested quantifier");
    if (atom.kind == Node::Kind::look) error("quantified lookahead");
    Node rep(Node::Kind::repeat);
    rep.min = min;
    rep.max = max;
    rep.children.push_back(std::move(atom));
    atom = std::move(rep);
  }

  uint32_t number() {
    uint32_t v = 0;
    size_t digits = 0;
    while (more() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<uint32_t>(peek() - '0');
      if (v > kMaxRepeat) error("repeat count above 1000");
      ++i_, ++digits;
    }
    if (digits == 0) error("malformed {m,n} quantifier");
    return v;
  }

  CharSet char_class(bool ci) {
    CharSet s;
    s.ignore_case = ci;
    s.negated = accept('^');
    bool first = true;
    while (true) {
      if (!more()) error("missing ']'");
      if (peek() == ']' && !first) { ++i_; break; }
      first = false;
      if (peek() == '[') error("nested character classes are not supported");
      char32_t lo = 0;
      if (accept('\\')) {
        std::optional<char32_t> lit = escape(s, /*in_class=*/true);
        if (!lit) continue;  // a property item, not a character
        lo = *lit;
      } else {
        lo = p_[i_++];
      }
      char32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && peek(1) != 0) {
        ++i_;
        if (accept('\\')) {
          std::optional<char32_t> lit = escape(s, /*in_class=*/true);
          if (!lit) error("range ending in a property");
          hi = *lit;
        } else {
          hi = p_[i_++];
        }
        if (hi < lo) error("character range out of order");
      }
      s.ranges.push_back({lo, hi});
    }
    return s;
  }

  // After a backslash: adds a property item to `s` and returns nullopt, or returns a literal.
  // Outside classes a literal is added to `s` too.
  std::optional<char32_t> escape(CharSet& s, bool in_class) {
    if (!more()) error("pattern ends with '\\'");
    const char32_t c = p_[i_++];
    std::optional<char32_t> lit;
    switch (c) {
      case 's': s.space = true; break;
      case 'S': s.not_space = true; break;
      case 'd': s.categories |= cat_bit(Category::Nd); break;
      case 'D': s.not_categories.push_back(cat_bit(Category::Nd)); break;
      case 'p': case 'P': {
        bool negate = c == 'P';
        std::u32string name;
        if (accept('{')) {
          if (accept('^')) negate = !negate;
          while (more() && peek() != '}') name.push_back(p_[i_++]);
          if (!accept('}')) error("missing '}' after \\p{");
        } else if (more()) {
          name.push_back(p_[i_++]);
        }
        const uint32_t mask = category_mask(name);
        if (mask == 0) error("unsupported Unicode property");
        if (negate) s.not_categories.push_back(mask);
        else s.categories |= mask;
        break;
      }
      case 'r': lit = '\r'; break;
      case 'n': lit = '\n'; break;
      case 't': lit = '\t'; break;
      case 'f': lit = '\f'; break;
      case 'v': lit = '\v'; break;
      case 'x': lit = hex(accept('{') ? 0 : 2, true); break;
      case 'u': lit = hex(4, false); break;
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
          error(std::string("unsupported escape '\\") + static_cast<char>(c) + "'");
        lit = c;  // escaped punctuation or other literal
    }
    if (lit && !in_class) s.ranges.push_back({*lit, *lit});
    return lit;
  }

  // `digits` hex digits, or (digits == 0) up to '}' after "\x{".
  char32_t hex(size_t digits, bool braced_allowed) {
    char32_t v = 0;
    size_t n = 0;
    while (more() && (digits == 0 ? peek() != '}' : n < digits)) {
      const char32_t h = p_[i_++];
      int d = (h >= '0' && h <= '9') ? int(h - '0') : (h >= 'a' && h <= 'f') ? int(h - 'a' + 10)
              : (h >= 'A' && h <= 'F') ? int(h - 'A' + 10) : -1;
      if (d < 0 || ++n > 6) error("malformed hex escape");
      v = v * 16 + static_cast<char32_t>(d);
    }
    if (n == 0 || (digits != 0 && n != digits)) error("malformed hex escape");
    if (digits == 0 && !(braced_allowed && accept('}'))) error("malformed hex escape");
    if (v > 0x10FFFF) error("hex escape beyond U+10FFFF");
    return v;
  }

  Node make_set(CharSet s) {
    s.finalize();
    sets_.push_back(std::move(s));
    Node n(Node::Kind::set);
    n.set = static_cast<uint32_t>(sets_.size() - 1);
    return n;
  }

  const std::string& pattern_;
  std::vector<CharSet>& sets_;
  std::vector<char32_t> p_;
  size_t i_ = 0;
};

bool nullable(const Node& n) {
  switch (n.kind) {
    case Node::Kind::set: return false;
    case Node::Kind::seq:
      return std::all_of(n.children.begin(), n.children.end(), [](const Node& c) { return nullable(c); });
    case Node::Kind::alt:
      return std::any_of(n.children.begin(), n.children.end(), [](const Node& c) { return nullable(c); });
    case Node::Kind::repeat: return n.min == 0 || nullable(n.children[0]);
    case Node::Kind::look: return true;
  }
  return true;
}

}  // namespace

struct Regex::Program {
  std::vector<CharSet> sets;
  std::vector<Inst> code;
};

namespace {

class Compiler {
 public:
  Compiler(std::vector<Inst>& code, const std::string& pattern) : code_(code), pattern_(pattern) {}
  void emit(const Node& n) {
    if (code_.size() > kMaxProgram) fail("pre-tokenizer regex too large after expanding repeats: '", pattern_, "'");
    switch (n.kind) {
      case Node::Kind::set: push({Op::set, false, n.set}); break;
      case Node::Kind::seq:
        for (const Node& c : n.children) emit(c);
        break;
      case Node::Kind::alt: {
        std::vector<size_t> jumps;
        for (size_t i = 0; i < n.children.size(); ++i) {
          const bool last = i + 1 == n.children.size();
          const size_t split = last ? 0 : push({Op::split});
          emit(n.children[i]);
          if (!last) {
            jumps.push_back(push({Op::jmp}));
            code_[split].a = static_cast<uint32_t>(split + 1);
            code_[split].b = static_cast<uint32_t>(code_.size());
          }
        }
        for (size_t j : jumps) code_[j].a = static_cast<uint32_t>(code_.size());
        break;
      }
      case Node::Kind::repeat: repeat(n); break;
      case Node::Kind::look: {
        const size_t look = push({Op::look, n.negate});
        code_[look].a = static_cast<uint32_t>(code_.size());
        emit(n.children[0]);
        push({Op::match});
        code_[look].b = static_cast<uint32_t>(code_.size());
        break;
      }
    }
  }

 private:
  size_t push(Inst i) {
    code_.push_back(i);
    return code_.size() - 1;
  }
  void repeat(const Node& n) {
    const Node& body = n.children[0];
    if (body.kind == Node::Kind::set) {
      Inst i{Op::repeat_set, false, body.set};
      i.min = n.min;
      i.max = n.max;
      push(i);
      return;
    }
    if (n.max == kInfinite && nullable(body))
      fail("pre-tokenizer regex: unbounded repeat of a group that can match empty in pattern '", pattern_, "'");
    for (uint32_t k = 0; k < n.min; ++k) emit(body);
    if (n.max == kInfinite) {
      const size_t split = push({Op::split});
      emit(body);
      push({Op::jmp, false, static_cast<uint32_t>(split)});
      code_[split].a = static_cast<uint32_t>(split + 1);
      code_[split].b = static_cast<uint32_t>(code_.size());
      return;
    }
    std::vector<size_t> splits;
    for (uint32_t k = n.min; k < n.max; ++k) {
      splits.push_back(push({Op::split}));
      emit(body);
    }
    for (size_t s : splits) {
      code_[s].a = static_cast<uint32_t>(s + 1);
      code_[s].b = static_cast<uint32_t>(code_.size());
    }
  }

  std::vector<Inst>& code_;
  const std::string& pattern_;
};

// Backtracking machine state for one split call (reused across match attempts).
class Matcher {
 public:
  Matcher(const Regex::Program& prog, const std::string& pattern, const char32_t* cps, size_t n)
      : prog_(prog), pattern_(pattern), cps_(cps), n_(n),
        budget_(kStepsPerCodePoint * (static_cast<uint64_t>(n) + 16)) {}

  // End of the match that starts at `pos`, or -1.
  std::ptrdiff_t run(uint32_t pc, size_t pos, size_t depth = 0) {
    if (stacks_.size() <= depth) stacks_.resize(depth + 1);
    auto& stack = stacks_[depth];
    stack.clear();
    while (true) {
      if (++steps_ > budget_)
        fail("pre-tokenizer regex backtracks too much (pathological pattern) in pattern '", pattern_, "'");
      const Inst& in = prog_.code[pc];
      bool ok = true;
      switch (in.op) {
        case Op::set:
          ok = pos < n_ && prog_.sets[in.a].matches(cps_[pos]);
          if (ok) ++pos, ++pc;
          break;
        case Op::split:
          stack.push_back({in.b, static_cast<uint32_t>(pos), kNoCount});
          pc = in.a;
          break;
        case Op::jmp: pc = in.a; break;
        case Op::repeat_set: {
          const CharSet& set = prog_.sets[in.a];
          const size_t limit = std::min<uint64_t>(n_ - pos, in.max);
          size_t k = 0;
          while (k < limit && set.matches(cps_[pos + k])) ++k;
          steps_ += k;
          ok = k >= in.min;
          if (ok) {
            if (k > in.min) stack.push_back({pc, static_cast<uint32_t>(pos), static_cast<uint32_t>(k - 1)});
            pos += k;
            ++pc;
          }
          break;
        }
        case Op::look: {
          const bool matched = run(in.a, pos, depth + 1) >= 0;
          ok = matched != in.negate;
          if (ok) pc = in.b;
          break;
        }
        case Op::match: return static_cast<std::ptrdiff_t>(pos);
      }
      if (ok) continue;
      // Backtrack.
      if (stack.empty()) return -1;
      Frame f = stack.back();
      stack.pop_back();
      if (f.count == kNoCount) {
        pc = f.pc;
        pos = f.pos;
      } else {
        const Inst& rep = prog_.code[f.pc];
        if (f.count > rep.min) stack.push_back({f.pc, f.pos, f.count - 1});
        pos = size_t{f.pos} + f.count;
        pc = f.pc + 1;
      }
    }
  }

 private:
  static constexpr uint32_t kNoCount = std::numeric_limits<uint32_t>::max();
  struct Frame {
    uint32_t pc, pos, count;  // count: repeat_set count to retry, or kNoCount for a split
  };
  const Regex::Program& prog_;
  const std::string& pattern_;
  const char32_t* cps_;
  size_t n_;
  uint64_t steps_ = 0, budget_;
  std::deque<std::vector<Frame>> stacks_;  // one per lookahead depth; a deque keeps references valid
};

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern), prog_(std::make_unique<Program>()) {
  Parser parser(pattern_, prog_->sets);
  const Node root = parser.parse();
  Compiler(prog_->code, pattern_).emit(root);
  prog_->code.push_back({Op::match});
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

const std::string& Regex::pattern() const { return pattern_; }

void Regex::split(const char32_t* cps, size_t n, std::vector<std::pair<size_t, size_t>>& pieces) const {
  FLAGOS_CHECK(n < std::numeric_limits<uint32_t>::max(), "pre-tokenizer: text of ", n, " code points is too long");
  Matcher m(*prog_, pattern_, cps, n);
  size_t last = 0;  // end of the previous piece
  for (size_t start = 0; start < n;) {
    const std::ptrdiff_t end = m.run(0, start);
    if (end < 0 || static_cast<size_t>(end) == start) {  // no match here (empty matches split nothing)
      ++start;
      continue;
    }
    if (start > last) pieces.push_back({last, start});
    pieces.push_back({start, static_cast<size_t>(end)});
    last = start = static_cast<size_t>(end);
  }
  if (last < n) pieces.push_back({last, n});
}

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) regexes_.emplace_back(p);
}

std::vector<std::pair<size_t, size_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;  // byte offset of each code point, plus the end
  cps.reserve(text.size());
  offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    offsets.push_back(pos);
    cps.push_back(unicode::next_code_point(text, pos));
  }
  offsets.push_back(text.size());

  std::vector<std::pair<size_t, size_t>> pieces{{0, cps.size()}}, next;
  if (cps.empty()) pieces.clear();
  for (const Regex& re : regexes_) {
    next.clear();
    for (const auto& [b, e] : pieces) {
      const size_t first = next.size();
      re.split(cps.data() + b, e - b, next);
      for (size_t i = first; i < next.size(); ++i) next[i].first += b, next[i].second += b;
    }
    pieces.swap(next);
  }
  for (auto& [b, e] : pieces) b = offsets[b], e = offsets[e];
  return pieces;
}

}  // namespace flagos::model
