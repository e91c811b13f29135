// The inference engine: runs a loaded model (the architectures in src/model) on one device with a
// paged KV cache shared by its sequences. Two levels:
//   - a low-level step API: forward a batch of (sequence, new tokens) items in one pass and get the
//     logits of each item's last token (or of every token); used for prefill chunks and for batched
//     decode of several sequences;
//   - generation: prompt ids -> streamed tokens and text with sampling, stop tokens, stop strings,
//     max_new_tokens and timing stats, for one prompt or a batch of prompts.
// Plus chat templates (ChatML/Qwen, Llama 3, Gemma) recognized from the model's Jinja template.
// Used by `flagos run`, `flagos bench model` and the HTTP server. An Engine is not thread-safe:
// call it from one thread at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flagos/device.h"
#include "flagos/dtype.h"
#include "flagos/model.h"
#include "flagos/op_params.h"
#include "flagos/tensor.h"
#include "flagos/tokenizer.h"

namespace flagos::engine {

struct EngineOptions {
  Device device = Device::cpu();  // weights not already there are copied to it
  // Tokens per sequence (prompt + generated). 0: the model's max_position (4096 when unknown).
  // Values above max_position are allowed (the caller's choice) but never below 1.
  int64_t max_context = 0;
  int64_t prefill_chunk = 512;  // prompt tokens per forward pass (bounds activation memory)
  int64_t max_batch = 16;       // sequences decoded together by generate_batch
  // Activations and KV cache: f32 (default), or bf16/f16. Logits are always returned as f32.
  DType compute_dtype = DType::f32;
  // The paged KV cache (src/engine/kv_cache.h): positions per block, and the tokens the pools
  // first hold (rounded up to blocks; they at least double whenever they run out). Layers with an
  // attention window keep every position (the attention op masks by the window).
  int64_t kv_block_size = 16;
  int64_t kv_grow_tokens = 256;
  // Decode steps (every item one token) captured in a graph per batch-size bucket (1, 2, 4, 8, ...)
  // and replayed, on devices whose backend supports graphs (CUDA). The environment variable
  // FLAGOS_CUDA_GRAPHS=0 turns them off as well. Architectures that read device data on the host
  // in their forward pass (mixture of experts) always run eagerly.
  bool graphs = true;
  // One linear for the q/k/v projections and one for gate/up of each layer, over weights stacked
  // once at load where they share dtype and layout (q, k, v then are views of the one output).
  // FLAGOS_ENGINE_FUSED_QKV=0 / FLAGOS_ENGINE_FUSED_GATE_UP=0 turn them off as well.
  bool fused_qkv = true;
  bool fused_gate_up = true;
};

using SeqId = int64_t;

// Counters of the engine's KV pool and decode graphs (tests, benchmarks).
struct EngineStats {
  int64_t kv_block_size = 0;
  int64_t kv_blocks = 0;        // blocks in the pools
  int64_t kv_free_blocks = 0;   // of which no sequence holds
  int64_t kv_pool_growths = 0;  // times the pools were reallocated larger
  int64_t graphs_captured = 0;  // decode graphs captured (again after each growth)
  int64_t graph_replays = 0;    // decode steps run by replaying a graph
};

// One item of a forward step: `tokens` are appended after what `seq` already holds.
struct StepItem {
  SeqId seq = -1;
  std::vector<int32_t> tokens;  // at least one
  bool all_logits = false;      // logits for every token of the item, not only the last
};

enum class FinishReason {
  length,       // max_new_tokens reached
  stop_token,   // an end-of-generation token (eos / eot / stop_token_ids) was sampled
  stop_string,  // the streamed text contained one of the stop strings
  cancelled,    // the token callback returned false
};
std::string_view to_string(FinishReason r);  // "length", "stop_token", "stop_string", "cancelled"

struct GenerationParams {
  // temperature 0 = greedy. `seed` seeds the sequence's draws; `offset` is ignored (the engine
  // counts the draws of each sequence itself, so a run is reproducible from the seed alone).
  // Penalties look at the sequence's prompt and generated tokens.
  SamplerParams sampling;
  int64_t max_new_tokens = 256;          // >= 1
  std::vector<std::string> stop;         // stop strings: generation ends when the text contains one;
                                         // it and anything after it are not emitted
  std::vector<int32_t> stop_token_ids;   // in addition to the model's end-of-generation tokens
  bool ignore_eos = false;               // do not stop at the model's end-of-generation tokens
  bool skip_special = true;              // leave special/control tokens out of the text
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, including a final stop token
  std::string text;             // the emitted text (stop string and what follows it removed)
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  // prefill_seconds: from the start until the first generated token is sampled (the prompt's
  // forward passes + one sampling). decode_seconds: the remaining generated_tokens - 1 steps.
  double prefill_seconds = 0;
  double decode_seconds = 0;
  FinishReason finish = FinishReason::length;
  double prefill_tokens_per_second() const;  // prompt_tokens / prefill_seconds (0 when unmeasured)
  double decode_tokens_per_second() const;   // (generated_tokens - 1) / decode_seconds
};

// Called once per generated token with the text it adds to the output. The piece may be empty:
// incomplete UTF-8, a special token, or text held back because it might begin a stop string (it
// is delivered with a later token or at the end). Return false to stop (FinishReason::cancelled).
using TokenCallback = std::function<bool(int32_t token, std::string_view piece)>;
// generate_batch: `index` is the request's position in the batch.
using BatchTokenCallback = std::function<bool(size_t index, int32_t token, std::string_view piece)>;

struct GenerationRequest {
  std::vector<int32_t> prompt;
  GenerationParams params;
};

// ---------------------------------------------------------------- chat templates
struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFormat {
  chatml,  // Qwen 2/2.5/3 and other <|im_start|> templates
  llama3,  // Llama 3 / 3.1 / 3.2 (<|start_header_id|>)
  gemma,   // Gemma 2/3 (<start_of_turn>)
};
std::string_view to_string(ChatFormat f);

// A chat template recognized from the model's Jinja text and rendered natively (no Jinja engine).
// Variants taken from the template text: the default system prompt of Qwen 2/2.5 templates, the
// "Cutting Knowledge Date" system header of Llama 3.1+ templates (date "26 Jul 2024", the
// templates' default), Qwen 3's empty think block when thinking is disabled.
class ChatTemplate {
 public:
  // `jinja` empty: the default format of `arch` (llama -> llama3, qwen* -> chatml, gemma* -> gemma;
  // another arch throws NotSupported). A non-empty template of no known format throws NotSupported
  // naming the known formats. `bos_text` is the BOS token's text ("<|begin_of_text|>", "<bos>").
  static ChatTemplate detect(std::string_view jinja, std::string_view arch, std::string bos_text = "");
  explicit ChatTemplate(ChatFormat format, std::string bos_text = "");

  ChatFormat format() const { return format_; }
  // Roles: system, user, assistant. Gemma takes a system message only first and requires
  // user/assistant to alternate starting with user. Bad roles or order throw InvalidArgument naming
  // the message index. `enable_thinking` (Qwen 3 templates only): false appends an empty think
  // block after the generation prompt, as the Qwen 3 template does.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true,
                    bool enable_thinking = true) const;

  // Variant settings (normally set by detect()).
  std::string default_system;          // chatml: system prompt used when the messages have none
  bool llama_date_header = false;      // llama3: Llama 3.1+ "Cutting Knowledge Date" system header
  std::string llama_date = "26 Jul 2024";  // its "Today Date"
  bool qwen3_thinking = false;         // chatml: Qwen 3 think handling of assistant messages

 private:
  ChatFormat format_;
  std::string bos_text_;
};

// ---------------------------------------------------------------- the engine
class Engine {
 public:
  // Takes ownership of the model (weights, tokenizer source). Throws InvalidArgument for an
  // architecture the engine does not implement (the message lists supported_architectures()),
  // missing or mis-shaped weights (naming the tensor), or bad options.
  explicit Engine(model::LoadedModel model, EngineOptions opts = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const model::ModelConfig& config() const;
  const EngineOptions& options() const;
  int64_t max_context() const;  // the effective limit (options resolved against the model)
  bool has_tokenizer() const;
  const model::Tokenizer& tokenizer() const;  // throws InvalidArgument when the model has none
  const model::LoadedModel& model() const;

  // ---- sequences
  SeqId create_sequence();
  void free_sequence(SeqId seq);  // unknown ids throw InvalidArgument
  int64_t sequence_length(SeqId seq) const;  // tokens held in its KV cache
  const std::vector<int32_t>& sequence_tokens(SeqId seq) const;
  // Keeps the first `length` cached tokens (the blocks past them return to the pool). Throws
  // InvalidArgument for length > sequence_length().
  void truncate_sequence(SeqId seq, int64_t length);
  int64_t kv_cache_bytes() const;  // KV memory of the blocks all sequences hold
  EngineStats stats() const;

  // ---- low-level step
  // Runs every item's tokens through the model in one pass (each sequence at most once per call)
  // and appends them to the sequences' KV caches. Returns f32 logits [rows, vocab] on the engine's
  // device: per item in order, its last token's row (or all its tokens' rows when all_logits).
  // Throws InvalidArgument (naming the item) for unknown sequences, empty or out-of-vocabulary
  // tokens, or a sequence that would exceed max_context; nothing is appended then.
  Tensor forward(const std::vector<StepItem>& items);

  // ---- generation
  // A fresh sequence per call. The prompt must be non-empty; prompt + max_new_tokens must fit in
  // max_context, else InvalidArgument naming the prompt length, max_new_tokens and the limit.
  GenerationResult generate(const std::vector<int32_t>& prompt, const GenerationParams& params,
                            const TokenCallback& on_token = {});
  // Continues `seq`: its cached tokens that match a prefix of `prompt` are reused (the rest are
  // dropped), the remainder is prefilled. Afterwards the sequence holds the prompt and the
  // generated tokens except the last one. For multi-turn chat without recomputing the history.
  GenerationResult generate(SeqId seq, const std::vector<int32_t>& prompt, const GenerationParams& params,
                            const TokenCallback& on_token = {});
  // Several prompts: up to max_batch sequences decode together (one forward pass per step);
  // the next request starts when one finishes. Results in request order.
  std::vector<GenerationResult> generate_batch(const std::vector<GenerationRequest>& requests,
                                               const BatchTokenCallback& on_token = {});

  // ---- text and chat helpers (need the tokenizer)
  std::vector<int32_t> encode(std::string_view text, bool add_bos = true) const;
  // The model's chat template (detected on first use; throws NotSupported as ChatTemplate::detect).
  const ChatTemplate& chat_template() const;
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;
  // apply_chat_template, then encode with special tokens parsed and no extra BOS (the template has it).
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flagos::engine
