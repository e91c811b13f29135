// Byte-level BPE (GPT-2 family: Llama 3, Qwen2/3): the byte alphabet, merges by rank, and the
// encoder that splits text with the pre-tokenizer patterns and merges each piece.
#include <algorithm>
#include <queue>

#include "flagos/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

namespace flagos::model {
namespace {

// Bytes that are printable stay themselves; the others get 256, 257, ... in byte order.
bool printable_byte(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteAlphabet {
  std::array<char32_t, 256> to_char{};
  ByteAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) to_char[static_cast<size_t>(b)] = printable_byte(b) ? char32_t(b) : next++;
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return alphabet().to_char[b]; }

int char_to_byte(char32_t c) {
  if (c < 256) return printable_byte(static_cast<int>(c)) ? static_cast<int>(c) : -1;
  if (c >= 256 + 68) return -1;  // 68 bytes are not printable
  const auto& t = alphabet().to_char;
  return static_cast<int>(std::find(t.begin(), t.end(), c) - t.begin());
}

void merge_by_rank(std::vector<int32_t>& ids, const MergeMap& merges) {
  const size_t n = ids.size();
  if (n < 2 || merges.empty()) return;
  constexpr int32_t kNone = -1;
  std::vector<int32_t> next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : kNone;
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  struct Candidate {
    int32_t rank, pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t left) {
    if (left == kNone || next[left] == kNone) return;
    auto it = merges.find(pair_key(ids[left], ids[next[left]]));
    if (it != merges.end()) heap.push({it->second.rank, left});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  constexpr int32_t kDead = -2;
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t left = c.pos;
    if (ids[left] == kDead || next[left] == kNone) continue;
    const int32_t right = next[left];
    auto it = merges.find(pair_key(ids[left], ids[right]));
    if (it == merges.end() || it->second.rank != c.rank) continue;  // stale candidate
    ids[left] = it->second.merged;
    ids[right] = kDead;
    next[left] = next[right];
    if (next[left] != kNone) prev[next[left]] = left;
    consider(prev[left]);
    consider(left);
  }
  ids.erase(std::remove(ids.begin(), ids.end(), kDead), ids.end());
}

void Tokenizer::Impl::init_merges() {
  const auto& m = src->merges;
  merges.reserve(m.size());
  for (size_t r = 0; r < m.size(); ++r) {
    const auto& [a, b] = m[r];
    auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end())
      invalid("merges[" + std::to_string(r) + "]",
              "merge '" + a + " " + b + "' references a token that is not in the vocabulary ('" +
                  (ia == vocab.end() ? a : ib == vocab.end() ? b : a + b) + "')");
    // A pair listed twice keeps its last rank, as in `tokenizers`.
    merges.insert_or_assign(pair_key(ia->second, ib->second), MergeInfo{static_cast<int32_t>(r), im->second});
  }
}

void Tokenizer::Impl::init_byte_level() {
  try {
    std::vector<std::string> patterns = src->pretokenizer_patterns;
    if (patterns.empty() && !src->pre.empty()) patterns = patterns_for_pre(src->pre);
    pretokenizer = std::make_unique<PreTokenizer>(patterns);
  } catch (const InvalidArgument& e) {
    invalid(src->pretokenizer_patterns.empty() ? "pre" : "pretokenizer_patterns", e.what());
  }
  ignore_merges = src->ignore_merges || src->pre == "llama-bpe" || src->pre == "llama3" ||
                  src->pre == "llama-v3";
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::append_utf8(s, byte_to_char(static_cast<uint8_t>(b)));
    auto it = vocab.find(s);
    byte_ids[static_cast<size_t>(b)] = it != vocab.end() ? it->second : -1;
  }
  // Decoded bytes of each token: alphabet characters back to bytes; tokens with characters
  // outside the alphabet (added tokens such as "<|im_start|>" are inside it) stay as they are.
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& t = src->tokens[id];
    std::string bytes;
    bool mapped = true;
    for (size_t pos = 0; pos < t.size() && mapped;) {
      const int b = char_to_byte(unicode::next_code_point(t, pos));
      if (b < 0) mapped = false;
      else bytes.push_back(static_cast<char>(b));
    }
    const bool added = types[id] == kTypeControl || types[id] == kTypeUserDefined;
    pieces[id] = (mapped && !added) ? bytes : t;
  }
}

void Tokenizer::Impl::encode_byte_level(std::string_view text, std::vector<int32_t>& out) const {
  std::string prefixed;
  if (src->nfc) {
    prefixed = unicode::nfc(text);
    text = prefixed;
  }
  if (src->add_space_prefix && !text.empty() && text[0] != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  if (text.empty()) return;
  std::vector<std::pair<size_t, size_t>> words;
  if (pretokenizer->empty()) words.push_back({0, text.size()});
  else words = pretokenizer->split(text);

  std::vector<int32_t> ids;
  std::string mapped;
  for (const auto& [b, e] : words) {
    const std::string_view word = text.substr(b, e - b);
    if (ignore_merges) {
      mapped.clear();
      for (char c : word) unicode::append_utf8(mapped, byte_to_char(static_cast<uint8_t>(c)));
      if (auto it = vocab.find(mapped); it != vocab.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    ids.clear();
    for (char c : word) {
      const int32_t id = byte_ids[static_cast<uint8_t>(c)];
      if (id >= 0) ids.push_back(id);
      else if (src->unk_id >= 0) ids.push_back(src->unk_id);  // a byte the vocabulary lacks
    }
    merge_by_rank(ids, merges);
    out.insert(out.end(), ids.begin(), ids.end());
  }
}

}  // namespace flagos::model
