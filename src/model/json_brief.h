// Short, bounded descriptions of JSON values for error messages: scalars as JSON text (cut to 80
// characters), arrays and objects by type and size, so a hostile deeply nested value is never
// serialized (nlohmann's dump recurses once per nesting level).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace flagos::model {

inline std::string json_brief(const nlohmann::json& v) {
  if (v.is_array()) {
    bool flat = v.size() <= 8;
    for (const auto& e : v) flat = flat && e.is_primitive();
    if (!flat) return "an array of " + std::to_string(v.size());
  }
  if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

}  // namespace flagos::model
