// Helpers for the tokenizer tests: loading the reference fixtures written by
// scripts/gen_tokenizer_fixtures.py and comparing id lists with a readable diff.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace flagos::model::testing_fixtures {

inline std::string fixtures_dir() { return FLAGOS_TOKENIZER_FIXTURES; }

inline nlohmann::json load_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open fixture " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? " " : "") << ids[i];
  os << "]";
  return os.str();
}

// Equal id lists, or a message with the first differing position.
inline ::testing::AssertionResult same_ids(const std::vector<int32_t>& got, const std::vector<int32_t>& want,
                                           const std::string& text) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure() << "text " << nlohmann::json(text).dump() << "\n  first difference at " << i
                                       << "\n  got  " << show(got) << "\n  want " << show(want);
}

}  // namespace flagos::model::testing_fixtures
