// Tokenizers: byte-level BPE (GPT-2 family: Llama 3, Qwen2/3) and SentencePiece-style (Llama 2,
// Gemma), built from tokenizer.json or from GGUF metadata.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flagos::model {

// A token matched in the raw text before normalization and pre-tokenization (longest match first).
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true;       // control token: matched only with parse_special, hidden by skip_special
  bool lstrip = false;       // the match also swallows whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only matched when not inside a word
};

// What a tokenizer is built from; filled by the model loaders (GGUF metadata or tokenizer.json).
struct TokenizerSource {
  enum class Kind { bpe, spm } kind = Kind::bpe;
  std::vector<std::string> tokens;     // id -> token text (BPE: byte-level alphabet; SPM: with U+2581)
  std::vector<float> scores;           // SPM scores (empty for BPE)
  std::vector<int32_t> token_types;    // GGUF types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::pair<std::string, std::string>> merges;  // BPE merges in rank order
  std::vector<std::string> pretokenizer_patterns;  // BPE split regexes in order (from tokenizer.json or GGUF pre name)
  std::string pre;                     // GGUF tokenizer.ggml.pre name ("llama-bpe", "qwen2", ...) when known
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  std::vector<int32_t> eos_ids;        // all end-of-generation tokens (eos, eot, <|im_end|>, <end_of_turn>...)
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;       // SPM: prepend U+2581 ("add_dummy_prefix"); BPE: prepend ' ' (ByteLevel add_prefix_space)
  bool byte_fallback = true;           // SPM: unknown bytes as <0xXX>
  std::string json_path;               // where it came from, for error messages
  // Added for tokenizer.json fidelity (GGUF sources can leave these at their defaults):
  // Tokens matched before pre-tokenization. When empty, the tokens of type 2 and 3 (unknown,
  // control: special) and 4 (user-defined: not special) are used.
  std::vector<AddedToken> added_tokens;
  bool ignore_merges = false;          // BPE: a word that is itself a token is not merged (Llama 3); also
                                       // on when `pre` names the Llama 3 pre-tokenizer
  bool nfc = false;                    // NFC-normalize the text first (Qwen2 tokenizer.json)
  bool space_prefix_first_only = false;  // add_space_prefix only at the start of the text, not after
                                         // added tokens (Metaspace prepend_scheme "first")
  bool space_prefix_if_absent = false;   // SPM: no prefix when the text already starts with a space (Metaspace)
  bool fuse_unk = false;               // SPM: consecutive unknown characters become one unk token
};

class Tokenizer {
 public:
  // Validates the source (ids in range, merges naming known tokens, patterns that compile) and
  // throws InvalidArgument naming src->json_path and the field otherwise.
  explicit Tokenizer(std::shared_ptr<const TokenizerSource> src);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Parses a tokenizer.json (HF `tokenizers` format) and, when given, tokenizer_config.json.
  static std::shared_ptr<TokenizerSource> source_from_hf_json(const std::string& tokenizer_json_path,
                                                              const std::string& tokenizer_config_path = "");
  // The same from JSON text in memory; `name` stands for the file in error messages (fuzzing, tests).
  static std::shared_ptr<TokenizerSource> source_from_hf_json_text(std::string_view tokenizer_json,
                                                                   std::string_view tokenizer_config_json = {},
                                                                   const std::string& name = "tokenizer.json");

  // add_bos: prepend BOS (and append EOS) when the tokenizer is configured to; parse_special: "<|im_start|>" etc. in
  // the text become their special ids (otherwise they are encoded as plain text).
  std::vector<int32_t> encode(std::string_view text, bool add_bos = true, bool parse_special = true) const;
  // skip_special: leave out control tokens (bos/eos/...) from the text.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  std::string token_text(int32_t id) const;  // the raw vocabulary string
  std::optional<int32_t> token_id(std::string_view token) const;
  bool is_special(int32_t id) const;
  bool is_eog(int32_t id) const;  // end of generation
  int64_t vocab_size() const;
  const TokenizerSource& source() const;

  // Incremental decoding for streaming: push ids, get text that is complete UTF-8 so far.
  class Stream {
   public:
    Stream(const Tokenizer& t, bool skip_special) : tok_(&t), skip_special_(skip_special) {}
    std::string push(int32_t id);
    std::string flush();  // whatever is left (invalid tails become U+FFFD)
   private:
    const Tokenizer* tok_;
    bool skip_special_;
    std::string pending_;
    bool first_ = true;
  };

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flagos::model
