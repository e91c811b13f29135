// Internals shared by the tokenizer sources: the state Tokenizer::Impl holds (vocabulary lookup,
// merges, added-token trie, decoded pieces) and the encoders of each tokenizer kind
// (tokenizer_bpe.cpp: byte-level BPE and rank merges; tokenizer_spm.cpp: SentencePiece-style).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flagos/tokenizer.h"
#include "model/pretokenize.h"

namespace flagos::model {

// GGUF token types.
enum TokenType : int32_t {
  kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4, kTypeUnused = 5, kTypeByte = 6,
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct MergeInfo {
  int32_t rank;
  int32_t merged;
};
// (left id, right id) -> merge.
using MergeMap = std::unordered_map<uint64_t, MergeInfo>;
inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Byte-level BPE alphabet (GPT-2): every byte has a printable code point.
char32_t byte_to_char(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the alphabet.
int char_to_byte(char32_t c);

// Longest-match lookup of added tokens over raw bytes.
class AddedTokenTrie {
 public:
  void insert(std::string_view content, int32_t index);
  // Index of the longest allowed token starting at text[pos] and its length; {-1, 0} if none.
  template <typename Allowed>
  std::pair<int32_t, size_t> longest(std::string_view text, size_t pos, Allowed allowed) const {
    std::pair<int32_t, size_t> best{-1, 0};
    uint32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<uint8_t>(text[i]));
      if (node == 0) break;
      const int32_t idx = nodes_[node].index;
      if (idx >= 0 && allowed(idx)) best = {idx, i + 1 - pos};
    }
    return best;
  }
  bool empty() const { return nodes_.size() <= 1; }

 private:
  uint32_t child(uint32_t node, uint8_t b) const;
  struct Node {
    std::vector<std::pair<uint8_t, uint32_t>> next;  // sorted by byte
    int32_t index = -1;
  };
  std::vector<Node> nodes_{Node{}};
};

struct Tokenizer::Impl {
  std::shared_ptr<const TokenizerSource> src;
  std::string where;                  // json_path or "tokenizer", for messages
  Vocab vocab;                        // token text -> id (first id wins for duplicates)
  std::vector<int32_t> types;         // per id (GGUF types; filled in when the source has none)
  std::vector<std::string> pieces;    // per id: the bytes decode() emits
  std::vector<AddedToken> added;      // matched before pre-tokenization
  AddedTokenTrie added_trie;
  std::vector<int32_t> eog;           // sorted end-of-generation ids
  bool strip_leading_space = false;   // decode drops one leading space (SPM with a dummy prefix)

  // BPE (byte-level, and SPM from tokenizer.json which has merges).
  MergeMap merges;
  std::unique_ptr<PreTokenizer> pretokenizer;
  std::array<int32_t, 256> byte_ids{};  // byte-level: id of each byte's alphabet char; SPM: <0xXX>; -1 missing
  bool ignore_merges = false;

  explicit Impl(std::shared_ptr<const TokenizerSource> s);
  [[noreturn]] void invalid(const std::string& field, const std::string& what) const;

  // Encodes text between added tokens; `at_start`: the segment begins the text.
  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  void encode_byte_level(std::string_view text, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  // Appends the bytes of token `id` (nothing when skip_special hides it).
  void append_piece(int32_t id, bool skip_special, std::string& out) const;

  // Setup helpers per kind.
  void init_byte_level();
  void init_spm();
  void init_merges();
};

// Appends (once) the ids of the end-of-turn control tokens of a vocabulary: <|eot_id|>,
// <|eom_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|> where they exist as control tokens.
void append_end_of_turn_ids(const std::vector<std::string>& tokens, const std::vector<int32_t>& types,
                            std::vector<int32_t>& ids);

// In-place BPE over ids: repeatedly applies the lowest-rank merge (leftmost on ties), O(n log n).
void merge_by_rank(std::vector<int32_t>& ids, const MergeMap& merges);
// SentencePiece BPE over the code points of `text`: repeatedly merges the adjacent pair whose
// concatenation is the mergeable token with the highest score (leftmost on ties). Returns the
// byte ranges of the final symbols.
std::vector<std::pair<size_t, size_t>> merge_by_score(std::string_view text, const Vocab& vocab,
                                                      const std::vector<float>& scores,
                                                      const std::vector<int32_t>& types);

}  // namespace flagos::model
