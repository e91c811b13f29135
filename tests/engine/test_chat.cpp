// Chat templates: every case of tests/fixtures/models/chat_cases.json (conversations rendered by
// transformers' apply_chat_template with the real Llama 3.2 / 3.0, Qwen 2.5 / 2 / 3 and Gemma 3
// templates) must come out byte-identical from ChatTemplate, and encode_chat must give the ids the
// HF tokenizer gives; plus format detection and the errors for unknown templates and bad turns.
#include <gtest/gtest.h>

#include "flagos/engine.h"
#include "golden.h"

namespace flagos {
namespace {

using engine::ChatFormat;
using engine::ChatMessage;
using engine::ChatTemplate;

nlohmann::json cases() { return test::read_json(std::string(FLAGOS_ENGINE_FIXTURES) + "/chat_cases.json"); }

std::vector<ChatMessage> messages(const nlohmann::json& c) {
  std::vector<ChatMessage> m;
  for (const auto& x : c["messages"]) m.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
  return m;
}

std::string model_template(const std::string& arch) {
  return test::read_json(test::fixture_dir(arch) + "/tokenizer_config.json")["chat_template"].get<std::string>();
}

std::string bos_text(const std::string& arch) {
  const auto cfg = test::read_json(test::fixture_dir(arch) + "/tokenizer_config.json");
  return cfg["bos_token"].is_string() ? cfg["bos_token"].get<std::string>() : "";
}

TEST(Chat, MatchesTransformersRendering) {
  const auto all = cases();
  ASSERT_GE(all.size(), 40u);
  int checked = 0;
  for (const auto& c : all) {
    const std::string arch = c["model"];
    const std::string jinja = c.contains("template") ? c["template"].get<std::string>() : model_template(arch);
    const ChatTemplate t = ChatTemplate::detect(jinja, arch, bos_text(arch));
    const bool thinking = c.contains("enable_thinking") ? c["enable_thinking"].get<bool>() : true;
    EXPECT_EQ(t.apply(messages(c), c["add_generation_prompt"].get<bool>(), thinking), c["expected"].get<std::string>())
        << arch << " / " << c["conversation"].get<std::string>() << " / generation prompt "
        << c["add_generation_prompt"] << " / thinking " << thinking << (c.contains("template") ? " / variant" : "");
    ++checked;
  }
  std::printf("[chat] %d renderings match transformers\n", checked);
}

TEST(Chat, DetectsVariants) {
  const ChatTemplate llama = ChatTemplate::detect(model_template("llama"), "llama", "<|begin_of_text|>");
  EXPECT_EQ(llama.format(), ChatFormat::llama3);
  EXPECT_TRUE(llama.llama_date_header);
  const ChatTemplate qwen25 = ChatTemplate::detect(model_template("qwen2"), "qwen2");
  EXPECT_EQ(qwen25.format(), ChatFormat::chatml);
  EXPECT_EQ(qwen25.default_system, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_FALSE(qwen25.qwen3_thinking);
  const ChatTemplate qwen3 = ChatTemplate::detect(model_template("qwen3"), "qwen3");
  EXPECT_EQ(qwen3.format(), ChatFormat::chatml);
  EXPECT_TRUE(qwen3.default_system.empty());
  EXPECT_TRUE(qwen3.qwen3_thinking);
  EXPECT_EQ(ChatTemplate::detect(model_template("gemma3"), "gemma3", "<bos>").format(), ChatFormat::gemma);
  // No template: the architecture's default.
  EXPECT_EQ(ChatTemplate::detect("", "llama").format(), ChatFormat::llama3);
  EXPECT_EQ(ChatTemplate::detect("", "qwen2").format(), ChatFormat::chatml);
  EXPECT_EQ(ChatTemplate::detect("", "gemma3").format(), ChatFormat::gemma);
  EXPECT_EQ(ChatTemplate(ChatFormat::gemma, "<bos>").apply({{"user", " hi "}}, true),
            "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
}

TEST(Chat, Errors) {
  try {
    ChatTemplate::detect("{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}", "llama");
    FAIL() << "an unknown template was accepted";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("no known format"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ChatTemplate::detect("", "mamba"), NotSupported);
  const ChatTemplate gemma(ChatFormat::gemma, "<bos>");
  try {
    gemma.apply({{"user", "a"}, {"user", "b"}});
    FAIL() << "non-alternating Gemma turns were accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("message 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gemma.apply({{"assistant", "a"}}), InvalidArgument);
  EXPECT_THROW(gemma.apply({{"user", "a"}, {"system", "b"}}), InvalidArgument);
  const ChatTemplate chatml(ChatFormat::chatml);
  try {
    chatml.apply({{"user", "a"}, {"tool", "b"}});
    FAIL() << "an unknown role was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'tool'"), std::string::npos) << e.what();
  }
}

// The engine's path: the model's template from load_model, rendered and encoded.
TEST(Chat, EngineEncodesLikeTransformers) {
  std::map<std::string, std::unique_ptr<engine::Engine>> engines;
  int checked = 0;
  for (const auto& c : cases()) {
    if (c.contains("template") || (c.contains("enable_thinking") && !c["enable_thinking"].get<bool>())) continue;
    const std::string arch = c["model"];
    auto& eng = engines[arch];
    if (!eng) eng = std::make_unique<engine::Engine>(model::load_model(test::fixture_dir(arch)));
    const bool gen = c["add_generation_prompt"].get<bool>();
    EXPECT_EQ(eng->apply_chat_template(messages(c), gen), c["expected"].get<std::string>()) << arch;
    EXPECT_EQ(eng->encode_chat(messages(c), gen), c["ids"].get<std::vector<int32_t>>())
        << arch << " / " << c["conversation"].get<std::string>();
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

}  // namespace
}  // namespace flagos
