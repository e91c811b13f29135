// Tokenizer: validation of a TokenizerSource, added-token matching, encode/decode, streaming
// decode. The per-kind encoders live in tokenizer_bpe.cpp and tokenizer_spm.cpp; building a
// source from tokenizer.json in tokenizer_json.cpp.
#include "flagos/tokenizer.h"

#include <algorithm>
#include <set>

#include "flagos/error.h"
#include "model/tokenizer_impl.h"
#include "model/unicode.h"

namespace flagos::model {
namespace {

constexpr size_t kMaxVocab = size_t{1} << 24;

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// A letter, number or '_' right before `pos` / at `pos` (for single_word added tokens).
bool word_char_before(std::string_view s, size_t pos) {
  if (pos == 0) return false;
  size_t b = pos - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t p = b;
  const char32_t c = unicode::next_code_point(s, p);
  const auto cat = unicode::category(c);
  return c == '_' || cat <= unicode::Category::Lo || (cat >= unicode::Category::Nd && cat <= unicode::Category::No);
}
bool word_char_at(std::string_view s, size_t pos) {
  if (pos >= s.size()) return false;
  const char32_t c = unicode::next_code_point(s, pos);
  const auto cat = unicode::category(c);
  return c == '_' || cat <= unicode::Category::Lo || (cat >= unicode::Category::Nd && cat <= unicode::Category::No);
}

}  // namespace

uint32_t AddedTokenTrie::child(uint32_t node, uint8_t b) const {
  const auto& next = nodes_[node].next;
  auto it = std::lower_bound(next.begin(), next.end(), b,
                             [](const std::pair<uint8_t, uint32_t>& e, uint8_t k) { return e.first < k; });
  return (it != next.end() && it->first == b) ? it->second : 0;
}

void AddedTokenTrie::insert(std::string_view content, int32_t index) {
  uint32_t node = 0;
  for (char ch : content) {
    const auto b = static_cast<uint8_t>(ch);
    uint32_t c = child(node, b);
    if (c == 0) {
      c = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& next = nodes_[node].next;
      auto it = std::lower_bound(next.begin(), next.end(), b,
                                 [](const std::pair<uint8_t, uint32_t>& e, uint8_t k) { return e.first < k; });
      next.insert(it, {b, c});
    }
    node = c;
  }
  if (nodes_[node].index < 0) nodes_[node].index = index;  // the first token with this content wins
}

void append_end_of_turn_ids(const std::vector<std::string>& tokens, const std::vector<int32_t>& types,
                            std::vector<int32_t>& ids) {
  static const std::set<std::string_view> kNames = {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>",
                                                    "<end_of_turn>", "<|endoftext|>"};
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (types[i] == kTypeControl && kNames.count(tokens[i]) && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(id);
  }
}

void Tokenizer::Impl::invalid(const std::string& field, const std::string& what) const {
  fail(where, ": ", field, ": ", what);
}

Tokenizer::Impl::Impl(std::shared_ptr<const TokenizerSource> s) : src(std::move(s)) {
  FLAGOS_CHECK(src != nullptr, "Tokenizer: null source");
  where = src->json_path.empty() ? std::string("tokenizer") : src->json_path;
  const size_t n = src->tokens.size();
  if (n == 0) invalid("tokens", "the vocabulary is empty");
  if (n > kMaxVocab) invalid("tokens", "vocabulary of " + std::to_string(n) + " tokens is too large");
  if (!src->token_types.empty() && src->token_types.size() != n)
    invalid("token_types", std::to_string(src->token_types.size()) + " types for " + std::to_string(n) + " tokens");
  if (!src->scores.empty() && src->scores.size() != n)
    invalid("scores", std::to_string(src->scores.size()) + " scores for " + std::to_string(n) + " tokens");
  auto check_id = [&](int32_t id, const char* field) {
    if (id < -1 || id >= static_cast<int64_t>(n))
      invalid(field, "token id " + std::to_string(id) + " out of range [0, " + std::to_string(n) + ")");
  };
  check_id(src->bos_id, "bos_id");
  check_id(src->eos_id, "eos_id");
  check_id(src->unk_id, "unk_id");
  check_id(src->pad_id, "pad_id");
  for (int32_t id : src->eos_ids) check_id(id, "eos_ids");

  types = src->token_types.empty() ? std::vector<int32_t>(n, kTypeNormal) : src->token_types;
  for (size_t i = 0; i < n; ++i)
    if (types[i] < 1 || types[i] > 6)
      invalid("token_types[" + std::to_string(i) + "]", "unknown token type " + std::to_string(types[i]));
  vocab.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (!src->tokens[i].empty()) vocab.emplace(src->tokens[i], static_cast<int32_t>(i));

  // Added tokens: given, or the control / unknown (special) and user-defined (not special) tokens
  // of a GGUF vocabulary.
  if (!src->added_tokens.empty()) {
    added = src->added_tokens;
  } else {
    for (size_t i = 0; i < n; ++i) {
      const bool special = types[i] == kTypeControl || types[i] == kTypeUnknown;
      if ((special || types[i] == kTypeUserDefined) && !src->tokens[i].empty())
        added.push_back({static_cast<int32_t>(i), src->tokens[i], special});
    }
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const auto& a = added[i];
    check_id(a.id, "added_tokens");
    if (a.content.empty()) invalid("added_tokens[" + std::to_string(i) + "]", "empty content");
    added_trie.insert(a.content, static_cast<int32_t>(i));
  }

  pieces.resize(n);
  if (src->kind == TokenizerSource::Kind::bpe) {
    init_byte_level();
  } else {
    init_spm();
  }
  init_merges();

  eog = src->eos_ids;
  if (src->eos_id >= 0) eog.push_back(src->eos_id);
  append_end_of_turn_ids(src->tokens, types, eog);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
}

void Tokenizer::Impl::encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out) const {
  if (src->kind == TokenizerSource::Kind::bpe) encode_byte_level(text, out);
  else encode_spm(text, at_start, out);
}

void Tokenizer::Impl::append_piece(int32_t id, bool skip_special, std::string& out) const {
  if (id < 0 || id >= static_cast<int64_t>(pieces.size()))
    fail("Tokenizer::decode: token id ", id, " out of range [0, ", pieces.size(), ") for ", where);
  if (skip_special && (types[static_cast<size_t>(id)] == kTypeControl || types[static_cast<size_t>(id)] == kTypeUnknown))
    return;
  out += pieces[static_cast<size_t>(id)];
}

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerSource> src) : impl_(std::make_unique<Impl>(std::move(src))) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_bos && im.src->add_bos && im.src->bos_id >= 0) out.push_back(im.src->bos_id);

  size_t text_start = 0;  // start of the text not yet encoded
  if (!im.added_trie.empty()) {
    auto allowed = [&](int32_t i) { return parse_special || !im.added[static_cast<size_t>(i)].special; };
    for (size_t pos = 0; pos < text.size();) {
      const auto [index, len] = im.added_trie.longest(text, pos, allowed);
      if (index < 0) {
        ++pos;
        continue;
      }
      const AddedToken& a = im.added[static_cast<size_t>(index)];
      if (a.single_word && (word_char_before(text, pos) || word_char_at(text, pos + len))) {
        ++pos;
        continue;
      }
      size_t b = pos, e = pos + len;
      if (a.lstrip)
        while (b > text_start && is_ascii_space(text[b - 1])) --b;
      if (a.rstrip)
        while (e < text.size() && is_ascii_space(text[e])) ++e;
      if (b > text_start) im.encode_segment(text.substr(text_start, b - text_start), text_start == 0, out);
      out.push_back(a.id);
      text_start = pos = e;
    }
  }
  if (text_start < text.size()) im.encode_segment(text.substr(text_start), text_start == 0, out);
  if (add_bos && im.src->add_eos && im.src->eos_id >= 0) out.push_back(im.src->eos_id);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) impl_->append_piece(id, skip_special, bytes);
  std::string text = unicode::repair_utf8(bytes);
  if (impl_->strip_leading_space && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

std::string Tokenizer::token_text(int32_t id) const {
  FLAGOS_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::token_text: token id ", id, " out of range [0, ",
               vocab_size(), ")");
  return impl_->src->tokens[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->vocab.find(token);
  if (it == impl_->vocab.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_special(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return false;
  const int32_t t = impl_->types[static_cast<size_t>(id)];
  return t == kTypeControl || t == kTypeUnknown;
}

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id); }

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->src->tokens.size()); }

const TokenizerSource& Tokenizer::source() const { return *impl_->src; }

std::string Tokenizer::Stream::push(int32_t id) {
  std::string piece;
  tok_->impl_->append_piece(id, skip_special_, piece);
  if (first_ && !piece.empty()) {
    if (tok_->impl_->strip_leading_space && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  const size_t complete = unicode::complete_utf8_prefix(pending_);
  std::string out = unicode::repair_utf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string Tokenizer::Stream::flush() {
  std::string out = unicode::repair_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace flagos::model
