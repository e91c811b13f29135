// Unicode support: general categories and NFC against Python's unicodedata (fixture unicode.json),
// UTF-8 decoding of invalid input, lossy repair and the streaming completeness check.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "model/unicode.h"

namespace flagos::model {
namespace {

using namespace testing_fixtures;

TEST(Unicode, CategoriesMatchPython) {
  const auto fx = load_json(fixtures_dir() + "/unicode.json");
  EXPECT_EQ(fx["unicode_version"].get<std::string>(), unicode::unicode_version());
  static const char* kNames[] = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
                                 "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};
  size_t n = 0;
  for (const auto& e : fx["categories"]) {
    const auto cp = e[0].get<char32_t>();
    EXPECT_EQ(kNames[static_cast<int>(unicode::category(cp))], e[1].get<std::string>()) << std::hex << "U+" << static_cast<uint32_t>(cp);
    ++n;
  }
  EXPECT_GT(n, 3000u);
  EXPECT_EQ(unicode::category(unicode::kInvalidBase + 0xFF), unicode::Category::Cn);
}

TEST(Unicode, NfcMatchesPython) {
  const auto fx = load_json(fixtures_dir() + "/unicode.json");
  for (const auto& e : fx["nfc"]) {
    const std::string in = e[0], want = e[1];
    EXPECT_EQ(unicode::nfc(in), want) << nlohmann::json(in).dump();
    EXPECT_EQ(unicode::nfc(want), want) << "NFC is idempotent";
  }
  EXPECT_EQ(unicode::nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(unicode::nfc("a\xCC\x81"), "\xC3\xA1");  // a + combining acute -> U+00E1
}

TEST(Unicode, WhiteSpaceAndFolding) {
  for (char32_t c : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x2000u, 0x2028u, 0x3000u})
    EXPECT_TRUE(unicode::is_white_space(c)) << static_cast<uint32_t>(c);
  for (char32_t c : {0x1Cu, 0x1Fu, 0x200Bu, 0xFEFFu, 0x41u}) EXPECT_FALSE(unicode::is_white_space(c)) << static_cast<uint32_t>(c);
  EXPECT_EQ(unicode::simple_fold('S'), U's');
  EXPECT_EQ(unicode::simple_fold(0x17F), U's');   // long s
  EXPECT_EQ(unicode::simple_fold(0x212A), U'k');  // Kelvin sign
  EXPECT_EQ(unicode::simple_fold(0x3A3), 0x3C3u);
  EXPECT_EQ(unicode::simple_fold('1'), U'1');
}

TEST(Unicode, Utf8DecodingOfInvalidInput) {
  const std::string s = "a\xC3\xA9\xF0\x9F\x98\x80\xC0\xAF\xED\xA0\x80\xE2\x82";
  std::vector<char32_t> cps;
  for (size_t pos = 0; pos < s.size();) cps.push_back(unicode::next_code_point(s, pos));
  const char32_t X = unicode::kInvalidBase;
  EXPECT_EQ(cps, (std::vector<char32_t>{'a', 0xE9, 0x1F600, X + 0xC0, X + 0xAF, X + 0xED, X + 0xA0, X + 0x80, X + 0xE2,
                                        X + 0x82}));
  std::string back;
  for (char32_t c : cps) unicode::append_utf8(back, c);
  EXPECT_EQ(back, s) << "invalid bytes survive a decode/encode round trip";
  // One U+FFFD per maximal invalid subpart (as Rust's from_utf8_lossy).
  EXPECT_EQ(unicode::repair_utf8("a\xF0\x9F\x98" "b\xFF\xE2\x82\xAC\xE2\x82"),
            "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xE2\x82\xAC\xEF\xBF\xBD");
  EXPECT_EQ(unicode::repair_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Unicode, CompletePrefixHoldsBackOnlyUnfinishedSequences) {
  EXPECT_EQ(unicode::complete_utf8_prefix(""), 0u);
  EXPECT_EQ(unicode::complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xF0"), 1u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xF0\x9F"), 1u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xF0\x9F\x98\x80"), 5u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xF0" "A"), 3u);  // broken, not unfinished: emit (as U+FFFD)
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xFF"), 2u);
  EXPECT_EQ(unicode::complete_utf8_prefix("a\x80\x80\x80"), 4u);
  EXPECT_EQ(unicode::complete_utf8_prefix("\xE0\x80"), 2u);  // E0 80 can never complete
}

}  // namespace
}  // namespace flagos::model
