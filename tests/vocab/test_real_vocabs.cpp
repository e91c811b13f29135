// Tokenizers of real models against independently produced token ids.
//
// The llama-cpp-python source package on PyPI carries vocabulary-only GGUF files of real models
// (Llama 3 BPE, Llama 2 SPM, Qwen 2, GPT-2, ...) with test inputs (.inp) and the ids their
// reference tokenizers give (.out). scripts/fetch_vocab_tests.sh puts them in a folder; this test
// reads FLAGOS_VOCAB_DIR and checks, for every vocabulary whose tokenizer type we implement, that
// encode(text) gives exactly those ids (no BOS: the .out files have none) and that decode inverts
// it. Without FLAGOS_VOCAB_DIR the test is skipped (it says so).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "flagos/tokenizer.h"
#include "model/gguf.h"
#include "model/loaders.h"

namespace fs = std::filesystem;
using flagos::model::Tokenizer;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> split_cases(const std::string& s, const std::string& sep) {
  std::vector<std::string> r;
  size_t pos = 0;
  while (true) {
    const size_t e = s.find(sep, pos);
    if (e == std::string::npos) break;
    r.push_back(s.substr(pos, e - pos));
    pos = e + sep.size();
  }
  return r;
}

// The vocabularies checked: those of the model families the engine supports (and GPT-2, the
// original byte-level BPE). Each must be present in the folder.
const std::vector<std::string> kVocabs = {"llama-bpe", "llama-spm", "qwen2", "gpt-2"};

class RealVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(RealVocab, EncodeMatchesReferenceIds) {
  const char* dir = std::getenv("FLAGOS_VOCAB_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "FLAGOS_VOCAB_DIR not set (scripts/fetch_vocab_tests.sh fetches the files)";
  const fs::path base = fs::path(dir) / ("ggml-vocab-" + GetParam() + ".gguf");
  ASSERT_TRUE(fs::exists(base)) << base;
  const auto file = flagos::model::gguf::File::open(base.string());
  Tokenizer tok(flagos::model::loaders::tokenizer_from_gguf(file));
  // .inp: cases separated by "\n__ggml_vocab_test__\n"; .out: one line of ids per case.
  const auto inputs = split_cases(read_file(base.string() + ".inp"), "\n__ggml_vocab_test__\n");
  std::stringstream out(read_file(base.string() + ".out"));
  std::string line;
  size_t n = 0, mismatches = 0;
  for (const auto& text : inputs) {
    ASSERT_TRUE(std::getline(out, line)) << "fewer .out lines than .inp cases";
    std::vector<int32_t> want;
    std::stringstream ls(line);
    int32_t id;
    while (ls >> id) want.push_back(id);
    const auto got = tok.encode(text, /*add_bos=*/false, /*parse_special=*/false);
    ++n;
    if (got != want) {
      ++mismatches;
      std::string g, w;
      for (auto x : got) g += " " + std::to_string(x);
      for (auto x : want) w += " " + std::to_string(x);
      ADD_FAILURE() << GetParam() << " case " << n << " text '" << text << "'\n  want" << w << "\n  got " << g;
    } else if (tok.source().kind == flagos::model::TokenizerSource::Kind::bpe) {
      EXPECT_EQ(tok.decode(got), text) << GetParam() << " case " << n;
    }
  }
  EXPECT_GT(n, 10u);
  std::printf("[vocab] %s: %zu cases, %zu mismatches\n", GetParam().c_str(), n, mismatches);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, RealVocab, ::testing::ValuesIn(kVocabs), [](const auto& info) {
  std::string s = info.param;
  for (auto& c : s)
    if (c == '-') c = '_';
  return s;
});

}  // namespace
