// Unicode support for the tokenizers (see unicode.h): table lookups over the generated data in
// unicode_tables.inc, UTF-8 handling and NFC.
#include "model/unicode.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <vector>

namespace flagos::model::unicode {
namespace {

struct CategoryRange {
  char32_t first, last;
  uint8_t value;
};
struct CodePointPair {
  char32_t from, to;
};
struct DecompEntry {
  char32_t cp;
  uint32_t offset;
  uint8_t length;
};
struct Composition {
  char32_t first, second, composite;
};

#include "model/unicode_tables.inc"

constexpr char32_t kMaxCodePoint = 0x10FFFF;
constexpr int kBlockBits = 8;
constexpr size_t kBlockSize = size_t{1} << kBlockBits;

// Two-stage lookup table built once from kCategoryRanges: block index per 256 code points, and
// the distinct 256-entry blocks.
struct CategoryTable {
  std::vector<uint16_t> block_of;
  std::vector<uint8_t> blocks;
  CategoryTable() {
    std::vector<uint8_t> flat(kMaxCodePoint + 1, static_cast<uint8_t>(Category::Cn));
    for (const auto& r : kCategoryRanges)
      std::fill(flat.begin() + r.first, flat.begin() + r.last + 1, r.value);
    std::unordered_map<std::string, uint16_t> seen;
    const size_t num_blocks = flat.size() / kBlockSize;
    block_of.resize(num_blocks);
    for (size_t b = 0; b < num_blocks; ++b) {
      std::string block(flat.begin() + static_cast<std::ptrdiff_t>(b * kBlockSize),
                        flat.begin() + static_cast<std::ptrdiff_t>((b + 1) * kBlockSize));
      auto [it, inserted] = seen.emplace(block, static_cast<uint16_t>(seen.size()));
      if (inserted) blocks.insert(blocks.end(), block.begin(), block.end());
      block_of[b] = it->second;
    }
  }
};

const CategoryTable& category_table() {
  static const CategoryTable table;
  return table;
}

int combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::upper_bound(std::begin(kCombiningClass), std::end(kCombiningClass), cp,
                             [](char32_t c, const CategoryRange& r) { return c < r.first; });
  if (it == std::begin(kCombiningClass)) return 0;
  --it;
  return cp <= it->last ? it->value : 0;
}

// Hangul syllable constants (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    auto it = std::lower_bound(std::begin(kDecompIndex), std::end(kDecompIndex), cp,
                               [](const DecompEntry& e, char32_t c) { return e.cp < c; });
    if (it != std::end(kDecompIndex) && it->cp == cp) {
      out.insert(out.end(), kDecompData + it->offset, kDecompData + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (a, b), or 0 when there is none.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair{a, b},
                             [](const Composition& c, const std::pair<char32_t, char32_t>& k) {
                               return c.first != k.first ? c.first < k.first : c.second < k.second;
                             });
  if (it != std::end(kCompositions) && it->first == a && it->second == b) return it->composite;
  return 0;
}

// Valid range of the second byte of a multi-byte sequence with lead byte `lead`.
std::pair<unsigned char, unsigned char> second_byte_range(unsigned char lead) {
  switch (lead) {
    case 0xE0: return {0xA0, 0xBF};
    case 0xED: return {0x80, 0x9F};
    case 0xF0: return {0x90, 0xBF};
    case 0xF4: return {0x80, 0x8F};
    default: return {0x80, 0xBF};
  }
}

// Number of bytes starting at s[pos] that form a valid (possibly incomplete) prefix of one
// UTF-8 sequence, and the full length that sequence needs (0 for an invalid lead byte).
std::pair<size_t, int> valid_prefix(std::string_view s, size_t pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  const int need = utf8_length(lead);
  if (need == 1) return {1, lead < 0x80 ? 1 : 0};
  size_t got = 1;
  const auto [lo, hi] = second_byte_range(lead);
  while (got < static_cast<size_t>(need) && pos + got < s.size()) {
    const auto b = static_cast<unsigned char>(s[pos + got]);
    const bool ok = got == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    ++got;
  }
  return {got, need};
}

}  // namespace

Category category(char32_t cp) {
  if (cp > kMaxCodePoint) return Category::Cn;
  const auto& t = category_table();
  return static_cast<Category>(t.blocks[size_t{t.block_of[cp >> kBlockBits]} * kBlockSize + (cp & (kBlockSize - 1))]);
}

bool is_white_space(char32_t cp) {
  // PropList.txt White_Space.
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

char32_t simple_fold(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  auto it = std::lower_bound(std::begin(kCaseFold), std::end(kCaseFold), cp,
                             [](const CodePointPair& p, char32_t c) { return p.from < c; });
  return (it != std::end(kCaseFold) && it->from == cp) ? it->to : cp;
}

void append_fold_sources(char32_t folded, std::vector<char32_t>& out) {
  // kCaseFold sorted by target code point.
  static const std::vector<CodePointPair> by_target = [] {
    std::vector<CodePointPair> v(std::begin(kCaseFold), std::end(kCaseFold));
    std::sort(v.begin(), v.end(), [](const CodePointPair& a, const CodePointPair& b) {
      return a.to != b.to ? a.to < b.to : a.from < b.from;
    });
    return v;
  }();
  auto it = std::lower_bound(by_target.begin(), by_target.end(), folded,
                             [](const CodePointPair& p, char32_t c) { return p.to < c; });
  for (; it != by_target.end() && it->to == folded; ++it) out.push_back(it->from);
}

const char* unicode_version() { return kUnicodeVersion; }

int utf8_length(unsigned char b) {
  if (b < 0xC2) return 1;  // ASCII, continuation bytes and overlong leads C0/C1
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  if (b < 0xF5) return 4;
  return 1;
}

char32_t next_code_point(std::string_view s, size_t& pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const auto [got, need] = valid_prefix(s, pos);
  if (need <= 1 || got < static_cast<size_t>(need)) {
    ++pos;
    return kInvalidBase + lead;
  }
  char32_t cp = lead & (0x7F >> need);
  for (int i = 1; i < need; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3F);
  pos += static_cast<size_t>(need);
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= kInvalidBase) {
    out.push_back(static_cast<char>(cp - kInvalidBase));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string repair_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const auto [got, need] = valid_prefix(s, pos);
    if (need >= 1 && got == static_cast<size_t>(need)) {
      out.append(s.substr(pos, got));
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD for the maximal invalid subpart
    }
    pos += got;
  }
  return out;
}

size_t complete_utf8_prefix(std::string_view s) {
  // Only the last 3 bytes can belong to an unfinished sequence.
  const size_t start = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = s.size(); i-- > start;) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x80 && b < 0xC0) continue;  // continuation byte: keep looking for its lead
    const auto [got, need] = valid_prefix(s, i);
    return (need > 1 && got == s.size() - i && got < static_cast<size_t>(need)) ? i : s.size();
  }
  return s.size();
}

std::string nfc(std::string_view s) {
  bool simple = true;
  for (size_t pos = 0; pos < s.size() && simple;) {
    const auto b = static_cast<unsigned char>(s[pos]);
    // Everything below U+0300 is NFC-stable; U+0300 starts with byte 0xCC.
    if (b < 0x80) { ++pos; continue; }
    simple = b < 0xCC;
    pos += static_cast<size_t>(utf8_length(b));
  }
  if (simple) return std::string(s);

  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) decompose(next_code_point(s, pos), cps);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) { ++i; continue; }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition.
  std::vector<char32_t> out;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;
  for (char32_t c : cps) {
    const int cc = combining_class(c);
    if (starter >= 0) {
      const bool adjacent = static_cast<std::ptrdiff_t>(out.size()) - 1 == starter;
      const int last_cc = combining_class(out.back());
      const bool blocked = !adjacent && (last_cc == 0 || last_cc >= cc);
      if (!blocked) {
        if (char32_t comp = compose_pair(out[static_cast<size_t>(starter)], c)) {
          out[static_cast<size_t>(starter)] = comp;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    out.push_back(c);
  }
  std::string result;
  result.reserve(s.size());
  for (char32_t c : out) append_utf8(result, c);
  return result;
}

}  // namespace flagos::model::unicode
