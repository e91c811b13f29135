// Chat templates rendered natively: the formats' rules written out (ChatML/Qwen, Llama 3, Gemma)
// and recognition of a model's Jinja template by the markers each format uses.
#include <string>
#include <string_view>

#include "flagos/engine.h"
#include "flagos/error.h"

namespace flagos::engine {
namespace {

// Jinja's `trim` / Python's str.strip(): leading and trailing whitespace.
std::string_view trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string_view strip_chars(std::string_view s, char c, bool left, bool right) {
  while (left && !s.empty() && s.front() == c) s.remove_prefix(1);
  while (right && !s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

void check_role(const ChatMessage& m, size_t i) {
  FLAGOS_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant", "chat: message ", i, " has role '",
               m.role, "' (expected system, user or assistant)");
}

// The default system prompt in a ChatML template: the text of a string literal
// '<|im_start|>system\n...<|im_end|>' (the Qwen 2 / 2.5 templates), with \n escapes decoded.
std::string chatml_default_system(std::string_view jinja) {
  for (const std::string_view head : {std::string_view("<|im_start|>system\\n"), std::string_view("<|im_start|>system\n")}) {
    for (size_t at = jinja.find(head); at != std::string_view::npos; at = jinja.find(head, at + 1)) {
      const size_t b = at + head.size();
      const size_t e = jinja.find("<|im_end|>", b);
      if (e == std::string_view::npos) break;
      const std::string_view lit = jinja.substr(b, e - b);
      if (lit.empty() || lit.find_first_of("'\"{}+") != std::string_view::npos) continue;
      std::string r;
      for (size_t i = 0; i < lit.size(); ++i) {
        if (lit[i] == '\\' && i + 1 < lit.size() && lit[i + 1] == 'n') {
          r += '\n';
          ++i;
        } else {
          r += lit[i];
        }
      }
      return r;
    }
  }
  return {};
}

std::string render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& msgs, bool gen_prompt,
                          bool enable_thinking) {
  std::string out;
  if ((msgs.empty() || msgs[0].role != "system") && !t.default_system.empty())
    out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  // Qwen 3: assistant turns after the last user message keep their reasoning; earlier ones drop it.
  size_t last_user = 0;
  bool has_user = false;
  for (size_t i = 0; i < msgs.size(); ++i)
    if (msgs[i].role == "user") last_user = i, has_user = true;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    if (m.role != "assistant" || !t.qwen3_thinking) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    std::string_view content = m.content, reasoning;
    if (const size_t close = content.find("</think>"); close != std::string_view::npos) {
      std::string_view before = strip_chars(content.substr(0, close), '\n', false, true);
      if (const size_t open = before.rfind("<think>"); open != std::string_view::npos)
        before = before.substr(open + 7);
      reasoning = strip_chars(before, '\n', true, false);
      content = strip_chars(content.substr(content.rfind("</think>") + 8), '\n', true, false);
    }
    out += "<|im_start|>assistant\n";
    const bool after_query = has_user && i > last_user;  // the template's last_query_index
    if (after_query && (i + 1 == msgs.size() || !reasoning.empty())) {
      out += "<think>\n";
      out += strip_chars(reasoning, '\n', true, true);
      out += "\n</think>\n\n";
      out += strip_chars(content, '\n', true, false);
    } else {
      out += content;
    }
    out += "<|im_end|>\n";
  }
  if (gen_prompt) {
    out += "<|im_start|>assistant\n";
    if (t.qwen3_thinking && !enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string render_llama3(const ChatTemplate& t, const std::string& bos, const std::vector<ChatMessage>& msgs,
                          bool gen_prompt) {
  std::string out = bos;
  size_t first = 0;
  if (t.llama_date_header) {
    std::string_view system;
    if (!msgs.empty() && msgs[0].role == "system") system = trim(msgs[0].content), first = 1;
    out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ";
    out += t.llama_date;
    out += "\n\n";
    out += system;
    out += "<|eot_id|>";
  }
  for (size_t i = first; i < msgs.size(); ++i) {
    out += "<|start_header_id|>" + msgs[i].role + "<|end_header_id|>\n\n";
    out += trim(msgs[i].content);
    out += "<|eot_id|>";
  }
  if (gen_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_gemma(const std::string& bos, const std::vector<ChatMessage>& msgs, bool gen_prompt) {
  std::string out = bos, prefix;
  size_t first = 0;
  if (!msgs.empty() && msgs[0].role == "system") prefix = msgs[0].content + "\n\n", first = 1;
  for (size_t i = first; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    FLAGOS_CHECK(m.role != "system", "chat (gemma): message ", i, " is a system message; only the first may be");
    const bool expect_user = (i - first) % 2 == 0;
    FLAGOS_CHECK((m.role == "user") == expect_user, "chat (gemma): message ", i, " has role '", m.role,
                 "'; roles must alternate user/assistant/user/... after an optional system message");
    out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n";
    if (i == first) out += prefix;
    out += trim(m.content);
    out += "<end_of_turn>\n";
  }
  if (gen_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

std::string_view to_string(ChatFormat f) {
  switch (f) {
    case ChatFormat::chatml: return "chatml";
    case ChatFormat::llama3: return "llama3";
    case ChatFormat::gemma: return "gemma";
  }
  return "?";
}

ChatTemplate::ChatTemplate(ChatFormat format, std::string bos_text) : format_(format), bos_text_(std::move(bos_text)) {}

ChatTemplate ChatTemplate::detect(std::string_view jinja, std::string_view arch, std::string bos_text) {
  if (jinja.empty()) {
    if (arch == "llama") {
      ChatTemplate t(ChatFormat::llama3, std::move(bos_text));
      t.llama_date_header = true;
      return t;
    }
    if (arch.starts_with("qwen")) {
      ChatTemplate t(ChatFormat::chatml, std::move(bos_text));
      t.qwen3_thinking = arch.starts_with("qwen3");
      return t;
    }
    if (arch.starts_with("gemma")) return ChatTemplate(ChatFormat::gemma, std::move(bos_text));
    fail<NotSupported>("chat: the model has no chat template and architecture '", arch,
                       "' has no default one (known formats: chatml, llama3, gemma)");
  }
  if (jinja.find("<|im_start|>") != std::string_view::npos) {
    ChatTemplate t(ChatFormat::chatml, std::move(bos_text));
    t.default_system = chatml_default_system(jinja);
    t.qwen3_thinking = jinja.find("<think>") != std::string_view::npos;
    return t;
  }
  if (jinja.find("<|start_header_id|>") != std::string_view::npos) {
    ChatTemplate t(ChatFormat::llama3, std::move(bos_text));
    t.llama_date_header = jinja.find("Cutting Knowledge Date") != std::string_view::npos;
    return t;
  }
  if (jinja.find("<start_of_turn>") != std::string_view::npos) return ChatTemplate(ChatFormat::gemma, std::move(bos_text));
  fail<NotSupported>("chat: the model's chat template (", jinja.size(),
                     " characters, starting \"", jinja.substr(0, 60),
                     "\") is of no known format (chatml <|im_start|>, llama3 <|start_header_id|>, gemma <start_of_turn>)");
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                bool enable_thinking) const {
  for (size_t i = 0; i < messages.size(); ++i) check_role(messages[i], i);
  switch (format_) {
    case ChatFormat::chatml: return render_chatml(*this, messages, add_generation_prompt, enable_thinking);
    case ChatFormat::llama3: return render_llama3(*this, bos_text_, messages, add_generation_prompt);
    case ChatFormat::gemma: return render_gemma(bos_text_, messages, add_generation_prompt);
  }
  fail<InvalidArgument>("chat: unknown format");
}

}  // namespace flagos::engine
