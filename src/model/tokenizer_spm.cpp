// SentencePiece-style tokenizers (Llama 2, Gemma): spaces become U+2581 (with an optional dummy
// prefix), then either merges by score (GGUF: SentencePiece BPE over the vocabulary scores) or by
// rank (tokenizer.json: BPE with merges), with <0xXX> byte fallback and the unknown token.
#include <algorithm>
#include <cstdio>
#include <queue>

#include "flagos/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

namespace flagos::model {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// The byte a "<0xXX>" token stands for, or -1.
int byte_token_value(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = t[i];
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> merge_by_score(std::string_view text, const Vocab& vocab,
                                                      const std::vector<float>& scores,
                                                      const std::vector<int32_t>& types) {
  std::vector<size_t> begin, end;
  for (size_t pos = 0; pos < text.size();) {
    begin.push_back(pos);
    unicode::next_code_point(text, pos);
    end.push_back(pos);
  }
  const size_t n = begin.size();
  constexpr int32_t kNone = -1;
  std::vector<int32_t> next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : kNone;
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  struct Candidate {
    float score;
    int32_t left;
    size_t size;
    // Highest score first, then the leftmost pair.
    bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Candidate> heap;
  auto consider = [&](int32_t left) {
    if (left == kNone || next[left] == kNone) return;
    const size_t b = begin[left], e = end[next[left]];
    auto it = vocab.find(text.substr(b, e - b));
    if (it == vocab.end()) return;
    const int32_t type = types[it->second];
    if (type != kTypeNormal && type != kTypeUserDefined) return;
    heap.push({scores.empty() ? 0.0f : scores[it->second], left, e - b});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t left = c.left;
    if (!alive[left] || next[left] == kNone) continue;
    const int32_t right = next[left];
    if (end[right] - begin[left] != c.size) continue;  // stale: one side has grown since
    end[left] = end[right];
    alive[right] = false;
    next[left] = next[right];
    if (next[left] != kNone) prev[next[left]] = left;
    consider(prev[left]);
    consider(left);
  }
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) out.push_back({begin[i], end[i]});
  return out;
}

void Tokenizer::Impl::init_spm() {
  byte_ids.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (auto it = vocab.find(std::string_view(name)); it != vocab.end()) byte_ids[static_cast<size_t>(b)] = it->second;
  }
  for (size_t id = 0; id < pieces.size(); ++id) {
    const std::string& t = src->tokens[id];
    const int byte = byte_token_value(t);
    if (byte >= 0 && (types[id] == kTypeByte || src->byte_fallback)) {
      pieces[id] = std::string(1, static_cast<char>(byte));
      continue;
    }
    std::string text;
    for (size_t pos = 0; pos < t.size();) {
      if (t.compare(pos, kSpace.size(), kSpace) == 0) {
        text.push_back(' ');
        pos += kSpace.size();
      } else {
        text.push_back(t[pos++]);
      }
    }
    pieces[id] = std::move(text);
  }
  strip_leading_space = src->add_space_prefix;
  ignore_merges = src->ignore_merges;
}

void Tokenizer::Impl::encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  std::string nfc_text;
  if (src->nfc) {
    nfc_text = unicode::nfc(text);
    text = nfc_text;
  }
  if (text.empty()) return;
  std::string norm;
  norm.reserve(text.size() + text.size() / 2 + 3);
  if (src->add_space_prefix && (at_start || !src->space_prefix_first_only) &&
      !(src->space_prefix_if_absent && (text[0] == ' ' || text.substr(0, kSpace.size()) == kSpace)))
    norm.append(kSpace);
  for (char c : text) {
    if (c == ' ') norm.append(kSpace);
    else norm.push_back(c);
  }
  auto fallback = [&](std::string_view piece, std::vector<int32_t>& ids) {
    bool bytes_ok = src->byte_fallback;
    for (char c : piece) bytes_ok = bytes_ok && byte_ids[static_cast<uint8_t>(c)] >= 0;
    if (bytes_ok) {
      for (char c : piece) ids.push_back(byte_ids[static_cast<uint8_t>(c)]);
    } else if (src->unk_id >= 0 && !(src->fuse_unk && !ids.empty() && ids.back() == src->unk_id)) {
      ids.push_back(src->unk_id);
    }
  };

  if (merges.empty() && src->merges.empty()) {
    // SentencePiece BPE by score.
    for (const auto& [b, e] : merge_by_score(norm, vocab, src->scores, types)) {
      const std::string_view piece = std::string_view(norm).substr(b, e - b);
      auto it = vocab.find(piece);
      if (it != vocab.end()) out.push_back(it->second);
      else fallback(piece, out);
    }
    return;
  }
  // BPE by merge rank over characters (tokenizer.json).
  if (ignore_merges) {
    if (auto it = vocab.find(std::string_view(norm)); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(norm.size());
  for (size_t pos = 0; pos < norm.size();) {
    const size_t b = pos;
    unicode::next_code_point(norm, pos);
    const std::string_view ch = std::string_view(norm).substr(b, pos - b);
    if (auto it = vocab.find(ch); it != vocab.end()) ids.push_back(it->second);
    else fallback(ch, ids);
  }
  merge_by_rank(ids, merges);
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace flagos::model
