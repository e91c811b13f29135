// Building a TokenizerSource from Hugging Face files: tokenizer.json (model, added tokens,
// normalizer, pre-tokenizer, post-processor) and tokenizer_config.json (bos/eos/unk/pad tokens,
// add_bos_token/add_eos_token, added_tokens_decoder). Unsupported components are rejected with
// InvalidArgument naming the file and the field.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flagos/error.h"
#include "flagos/tokenizer.h"
#include "model/pretokenize.h"
#include "model/tokenizer_impl.h"

namespace flagos::model {
namespace {

using json = nlohmann::json;
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;
constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581
constexpr size_t kMaxNesting = 32;      // Sequence-in-Sequence depth of normalizers etc.
constexpr int64_t kMaxIdGaps = 65536;   // ids the vocabulary may leave unused

// Field accessors whose errors name the file and the field path.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  [[noreturn]] void error(const std::string& field, const std::string& what) const {
    fail(file_, ": ", field, ": ", what);
  }
  json parse(std::string_view text) const {
    try {
      return json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
      fail(file_, ": invalid JSON: ", e.what());
    }
  }
  const json& object(const json& j, const std::string& field) const {
    if (!j.is_object()) error(field, std::string("expected an object, got ") + j.type_name());
    return j;
  }
  const json& array(const json& j, const std::string& field) const {
    if (!j.is_array()) error(field, std::string("expected an array, got ") + j.type_name());
    return j;
  }
  std::string string(const json& j, const std::string& field) const {
    if (!j.is_string()) error(field, std::string("expected a string, got ") + j.type_name());
    return j.get<std::string>();
  }
  bool boolean(const json& j, const std::string& field) const {
    if (!j.is_boolean()) error(field, std::string("expected true/false, got ") + j.type_name());
    return j.get<bool>();
  }
  int32_t token_id(const json& j, const std::string& field) const {
    if (!j.is_number_integer()) error(field, std::string("expected a token id, got ") + j.type_name());
    const int64_t v = j.get<int64_t>();
    if (v < 0 || v > kMaxTokenId) error(field, "token id " + std::to_string(v) + " out of range");
    return static_cast<int32_t>(v);
  }
  // Optional members: absent or null give the default.
  bool opt_bool(const json& obj, const char* key, bool def, const std::string& path) const {
    auto it = obj.find(key);
    return (it == obj.end() || it->is_null()) ? def : boolean(*it, path + "." + key);
  }
  std::string opt_string(const json& obj, const char* key, const std::string& path) const {
    auto it = obj.find(key);
    return (it == obj.end() || it->is_null()) ? std::string() : string(*it, path + "." + key);
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// State gathered while walking normalizer / pre_tokenizer / decoder.
struct Pipeline {
  bool byte_level = false;    // ByteLevel pre-tokenizer or decoder
  bool space_escape = false;  // ' ' -> U+2581 (Replace normalizer or Metaspace)
  bool prefix = false;        // prepend U+2581 / ' '
  bool prefix_first_only = false;
  bool prefix_if_absent = false;  // Metaspace: no prefix when the text starts with U+2581 already
  bool nfc = false;
  std::vector<std::string> patterns;
};

// obj[key], or null when absent.
const json& member(const json& obj, const char* key) {
  static const json null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

std::string escape_literal(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && static_cast<unsigned char>(c) < 0x80) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Hostile files can nest Sequences arbitrarily deep; the walkers recurse, so bound it.
void check_depth(const Reader& r, const std::string& path) {
  if (static_cast<size_t>(std::count(path.begin(), path.end(), '[')) > kMaxNesting)
    r.error(path, "nested more than " + std::to_string(kMaxNesting) + " levels deep");
}

void walk_normalizer(const Reader& r, const json& n, const std::string& path, Pipeline& p) {
  if (n.is_null()) return;
  check_depth(r, path);
  r.object(n, path);
  const std::string type = r.opt_string(n, "type", path);
  if (type == "Sequence") {
    const json& list = r.array(member(n, "normalizers"), path + ".normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      walk_normalizer(r, list[i], path + ".normalizers[" + std::to_string(i) + "]", p);
  } else if (type == "NFC") {
    p.nfc = true;
  } else if (type == "Replace") {
    const json& pat = member(n, "pattern");
    const bool space = pat.is_object() && pat.contains("String") && pat["String"] == " ";
    if (!space || r.opt_string(n, "content", path) != kSpaceMark)
      r.error(path, "only Replace(' ' -> U+2581) is supported");
    p.space_escape = true;
  } else if (type == "Prepend") {
    if (r.opt_string(n, "prepend", path) != kSpaceMark) r.error(path + ".prepend", "only U+2581 is supported");
    p.prefix = true;
  } else {
    r.error(path + ".type", "unsupported normalizer '" + type + "' (supported: Sequence, NFC, Replace, Prepend)");
  }
}

void walk_pre_tokenizer(const Reader& r, const json& n, const std::string& path, Pipeline& p) {
  if (n.is_null()) return;
  check_depth(r, path);
  r.object(n, path);
  const std::string type = r.opt_string(n, "type", path);
  if (type == "Sequence") {
    const json& list = r.array(member(n, "pretokenizers"), path + ".pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      walk_pre_tokenizer(r, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", p);
  } else if (type == "Split") {
    const json& pattern = member(n, "pattern");
    if (p.space_escape && pattern.is_object() && pattern.contains("String") && pattern["String"] == " ")
      return;  // Gemma's Split(" ", MergedWithPrevious): no spaces are left after ' ' -> U+2581
    const std::string behavior = r.opt_string(n, "behavior", path);
    if (behavior != "Isolated") r.error(path + ".behavior", "only \"Isolated\" is supported, got '" + behavior + "'");
    if (r.opt_bool(n, "invert", false, path)) r.error(path + ".invert", "inverted splits are not supported");
    const json& pat = r.object(member(n, "pattern"), path + ".pattern");
    std::string regex;
    if (pat.contains("Regex")) regex = r.string(pat["Regex"], path + ".pattern.Regex");
    else if (pat.contains("String")) regex = escape_literal(r.string(pat["String"], path + ".pattern.String"));
    else r.error(path + ".pattern", "expected Regex or String");
    try {
      Regex check(regex);
    } catch (const InvalidArgument& e) {
      r.error(path + ".pattern", e.what());
    }
    p.patterns.push_back(regex);
  } else if (type == "ByteLevel") {
    p.byte_level = true;
    p.prefix = p.prefix || r.opt_bool(n, "add_prefix_space", false, path);
    if (r.opt_bool(n, "use_regex", true, path)) p.patterns.push_back(kPatternGpt2);
  } else if (type == "Metaspace") {
    if (r.opt_string(n, "replacement", path) != kSpaceMark) r.error(path + ".replacement", "only U+2581 is supported");
    if (r.opt_bool(n, "split", false, path)) r.error(path + ".split", "Metaspace with split=true is not supported");
    p.space_escape = true;
    p.prefix_if_absent = true;
    std::string scheme = r.opt_string(n, "prepend_scheme", path);
    if (scheme.empty()) scheme = r.opt_bool(n, "add_prefix_space", true, path) ? "always" : "never";
    if (scheme == "always") {
      p.prefix = true;
    } else if (scheme == "first") {
      p.prefix = p.prefix_first_only = true;
    } else if (scheme != "never") {
      r.error(path + ".prepend_scheme", "unknown scheme '" + scheme + "'");
    }
  } else {
    r.error(path + ".type",
            "unsupported pre-tokenizer '" + type + "' (supported: Sequence, Split, ByteLevel, Metaspace)");
  }
}

void walk_decoder(const Reader& r, const json& n, const std::string& path, Pipeline& p) {
  if (n.is_null()) return;
  check_depth(r, path);
  r.object(n, path);
  const std::string type = r.opt_string(n, "type", path);
  if (type == "ByteLevel") p.byte_level = true;
  if (type == "Sequence" && n.contains("decoders") && n["decoders"].is_array())
    for (size_t i = 0; i < n["decoders"].size(); ++i)
      walk_decoder(r, n["decoders"][i], path + ".decoders[" + std::to_string(i) + "]", p);
}

// Token text of a config entry: "text", {"content": "text"} or null (empty).
std::string config_token(const Reader& r, const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return {};
  if (it->is_object()) return r.opt_string(*it, "content", key);
  return r.string(*it, key);
}

struct Template {
  std::vector<std::string> before, after;  // special tokens around $A in the single-sequence template
};

void walk_post_processor(const Reader& r, const json& n, const std::string& path, Template& t) {
  if (n.is_null()) return;
  check_depth(r, path);
  r.object(n, path);
  const std::string type = r.opt_string(n, "type", path);
  if (type == "Sequence") {
    const json& list = r.array(member(n, "processors"), path + ".processors");
    for (size_t i = 0; i < list.size(); ++i)
      walk_post_processor(r, list[i], path + ".processors[" + std::to_string(i) + "]", t);
  } else if (type == "TemplateProcessing") {
    const json& single = r.array(member(n, "single"), path + ".single");
    bool seen_a = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string item = path + ".single[" + std::to_string(i) + "]";
      const json& e = r.object(single[i], item);
      if (e.contains("Sequence")) {
        seen_a = true;
      } else if (e.contains("SpecialToken")) {
        const std::string id = r.string(r.object(e["SpecialToken"], item).value("id", json()), item + ".SpecialToken.id");
        (seen_a ? t.after : t.before).push_back(id);
      } else {
        r.error(item, "expected Sequence or SpecialToken");
      }
    }
    if (t.before.size() > 1 || t.after.size() > 1)
      r.error(path + ".single", "more than one special token before or after the text is not supported");
  } else if (type != "ByteLevel") {
    r.error(path + ".type", "unsupported post-processor '" + type + "' (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
}

std::shared_ptr<TokenizerSource> build_source(std::string_view tokenizer_json, std::string_view config_json,
                                              const std::string& name, const std::string& config_name) {
  const Reader r(name);
  const json root = r.parse(tokenizer_json);
  r.object(root, "(top level)");
  if (!root.contains("model")) r.error("model", "missing");
  const json& model = r.object(root["model"], "model");
  const std::string type = model.contains("type") ? r.string(model["type"], "model.type") : "BPE";
  if (type != "BPE")
    r.error("model.type", "unsupported tokenizer model '" + type + "' (supported: BPE, byte-level or SentencePiece-style)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!r.opt_string(model, key, "model").empty()) r.error(std::string("model.") + key, "not supported");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    r.error("model.dropout", "BPE dropout is not supported");

  auto src = std::make_shared<TokenizerSource>();
  src->json_path = name;

  // Vocabulary and added tokens.
  std::vector<std::pair<int32_t, std::string>> entries;
  if (!model.contains("vocab")) r.error("model.vocab", "missing");
  const json& vocab = r.object(model["vocab"], "model.vocab");
  entries.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    entries.push_back({r.token_id(it.value(), "model.vocab[\"" + it.key() + "\"]"), it.key()});
  std::vector<AddedToken> added;
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& list = r.array(root["added_tokens"], "added_tokens");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      const json& a = r.object(list[i], path);
      AddedToken t;
      t.id = r.token_id(member(a, "id"), path + ".id");
      t.content = r.string(member(a, "content"), path + ".content");
      if (t.content.empty()) r.error(path + ".content", "empty");
      t.special = r.opt_bool(a, "special", false, path);
      t.lstrip = r.opt_bool(a, "lstrip", false, path);
      t.rstrip = r.opt_bool(a, "rstrip", false, path);
      t.single_word = r.opt_bool(a, "single_word", false, path);
      entries.push_back({t.id, t.content});
      added.push_back(std::move(t));
    }
  }
  int32_t max_id = -1;
  for (const auto& e : entries) max_id = std::max(max_id, e.first);
  if (max_id < 0) r.error("model.vocab", "the vocabulary is empty");
  if (max_id + 1 > static_cast<int64_t>(entries.size()) + kMaxIdGaps)
    r.error("model.vocab", "token ids up to " + std::to_string(max_id) + " for only " + std::to_string(entries.size()) +
                               " tokens");
  src->tokens.assign(static_cast<size_t>(max_id) + 1, std::string());
  std::vector<bool> filled(src->tokens.size(), false);
  for (const auto& [id, text] : entries) {
    if (filled[static_cast<size_t>(id)] && src->tokens[static_cast<size_t>(id)] != text)
      r.error("model.vocab", "token id " + std::to_string(id) + " is given to both '" +
                                 src->tokens[static_cast<size_t>(id)] + "' and '" + text + "'");
    src->tokens[static_cast<size_t>(id)] = text;
    filled[static_cast<size_t>(id)] = true;
  }
  src->token_types.assign(src->tokens.size(), kTypeNormal);
  for (size_t i = 0; i < filled.size(); ++i)
    if (!filled[i]) src->token_types[i] = kTypeUnused;  // a hole in the id space
  for (const auto& t : added) src->token_types[static_cast<size_t>(t.id)] = t.special ? kTypeControl : kTypeUserDefined;

  // Merges: "a b" strings or [a, b] pairs.
  if (model.contains("merges") && !model["merges"].is_null()) {
    const json& merges = r.array(model["merges"], "model.merges");
    src->merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string path = "model.merges[" + std::to_string(i) + "]";
      const json& m = merges[i];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
          r.error(path, "expected \"left right\", got '" + s + "'");
        src->merges.push_back({s.substr(0, sp), s.substr(sp + 1)});
      } else if (m.is_array() && m.size() == 2) {
        src->merges.push_back({r.string(m[0], path + "[0]"), r.string(m[1], path + "[1]")});
      } else {
        r.error(path, "expected a string or a pair of strings");
      }
    }
  }
  src->byte_fallback = r.opt_bool(model, "byte_fallback", false, "model");
  src->fuse_unk = r.opt_bool(model, "fuse_unk", false, "model");
  src->ignore_merges = r.opt_bool(model, "ignore_merges", false, "model");
  Vocab lookup;
  for (size_t i = 0; i < src->tokens.size(); ++i)
    if (filled[i]) lookup.emplace(src->tokens[i], static_cast<int32_t>(i));
  auto id_of = [&](const std::string& token, const std::string& file, const std::string& field) {
    auto it = lookup.find(token);
    if (it == lookup.end()) fail(file, ": ", field, ": token '", token, "' is not in the vocabulary");
    return it->second;
  };
  for (size_t i = 0; i < src->merges.size(); ++i) {
    const auto& [a, b] = src->merges[i];
    for (const std::string& t : {a, b, a + b})
      if (!lookup.count(t))
        r.error("model.merges[" + std::to_string(i) + "]",
                "merge '" + a + " " + b + "' references '" + t + "', which is not in the vocabulary");
  }
  const std::string unk = r.opt_string(model, "unk_token", "model");
  if (!unk.empty()) src->unk_id = id_of(unk, name, "model.unk_token");
  if (src->byte_fallback)
    for (size_t i = 0; i < src->tokens.size(); ++i) {
      const std::string& t = src->tokens[i];
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && src->token_types[i] == kTypeNormal)
        src->token_types[i] = kTypeByte;
    }
  if (src->unk_id >= 0 && src->token_types[static_cast<size_t>(src->unk_id)] == kTypeNormal)
    src->token_types[static_cast<size_t>(src->unk_id)] = kTypeUnknown;

  // Normalizer, pre-tokenizer, decoder -> kind and text handling.
  Pipeline p;
  walk_normalizer(r, root.value("normalizer", json()), "normalizer", p);
  walk_pre_tokenizer(r, root.value("pre_tokenizer", json()), "pre_tokenizer", p);
  walk_decoder(r, root.value("decoder", json()), "decoder", p);
  if (p.byte_level && !p.space_escape) {
    src->kind = TokenizerSource::Kind::bpe;
  } else if (p.space_escape && !p.byte_level) {
    src->kind = TokenizerSource::Kind::spm;
  } else {
    r.error("pre_tokenizer", p.byte_level ? "mixes ByteLevel with U+2581 space escaping"
                                          : "BPE needs a ByteLevel pre-tokenizer or U+2581 space escaping "
                                            "(Replace normalizer or Metaspace)");
  }
  if (src->kind == TokenizerSource::Kind::spm && !p.patterns.empty())
    r.error("pre_tokenizer", "Split patterns with U+2581 space escaping are not supported");
  src->pretokenizer_patterns = p.patterns;
  src->add_space_prefix = p.prefix;
  src->space_prefix_first_only = p.prefix_first_only;
  src->space_prefix_if_absent = p.prefix_if_absent;
  src->nfc = p.nfc;
  src->added_tokens = added;

  Template tmpl;
  walk_post_processor(r, root.value("post_processor", json()), "post_processor", tmpl);
  if (!tmpl.before.empty()) {
    src->add_bos = true;
    src->bos_id = id_of(tmpl.before[0], name, "post_processor.single");
  }
  if (!tmpl.after.empty()) {
    src->add_eos = true;
    src->eos_id = id_of(tmpl.after[0], name, "post_processor.single");
  }

  // tokenizer_config.json.
  if (!config_json.empty()) {
    const Reader c(config_name);
    const json cfg = c.parse(config_json);
    c.object(cfg, "(top level)");
    if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
      for (const auto& [key, val] : cfg["added_tokens_decoder"].items()) {
        const std::string path = "added_tokens_decoder[\"" + key + "\"]";
        c.object(val, path);
        const std::string content = c.string(member(val, "content"), path + ".content");
        auto it = lookup.find(content);
        if (it == lookup.end()) c.error(path, "token '" + content + "' is not in " + name);
        const bool known = std::any_of(src->added_tokens.begin(), src->added_tokens.end(),
                                       [&](const AddedToken& t) { return t.id == it->second; });
        if (known || content.empty()) continue;
        AddedToken t{it->second, content, c.opt_bool(val, "special", false, path), c.opt_bool(val, "lstrip", false, path),
                     c.opt_bool(val, "rstrip", false, path), c.opt_bool(val, "single_word", false, path)};
        src->token_types[static_cast<size_t>(t.id)] = t.special ? kTypeControl : kTypeUserDefined;
        src->added_tokens.push_back(std::move(t));
      }
    }
    auto token_field = [&](const char* key, int32_t& id) {
      const std::string text = config_token(c, cfg, key);
      if (!text.empty()) id = id_of(text, config_name, key);
    };
    token_field("bos_token", src->bos_id);
    token_field("eos_token", src->eos_id);
    token_field("unk_token", src->unk_id);
    token_field("pad_token", src->pad_id);
    src->add_bos = c.opt_bool(cfg, "add_bos_token", src->add_bos, "(top level)");
    src->add_eos = c.opt_bool(cfg, "add_eos_token", src->add_eos, "(top level)");
  }
  if (src->add_bos && src->bos_id < 0) r.error("post_processor", "BOS is to be added but no BOS token is known");

  if (src->eos_id >= 0) src->eos_ids.push_back(src->eos_id);
  append_end_of_turn_ids(src->tokens, src->token_types, src->eos_ids);
  return src;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open ", what);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::shared_ptr<TokenizerSource> Tokenizer::source_from_hf_json(const std::string& tokenizer_json_path,
                                                                const std::string& tokenizer_config_path) {
  const std::string tok = read_file(tokenizer_json_path, "tokenizer.json");
  const std::string cfg = tokenizer_config_path.empty() ? std::string() : read_file(tokenizer_config_path, "tokenizer_config.json");
  return build_source(tok, cfg, tokenizer_json_path, tokenizer_config_path);
}

std::shared_ptr<TokenizerSource> Tokenizer::source_from_hf_json_text(std::string_view tokenizer_json,
                                                                     std::string_view tokenizer_config_json,
                                                                     const std::string& name) {
  return build_source(tokenizer_json, tokenizer_config_json, name, name + " (tokenizer_config)");
}

}  // namespace flagos::model
