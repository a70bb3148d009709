// matches(): a table of filters x rows with the expected answer, covering the
// comparison rules of docs/contract.md ("Projection node": Filters).
#include "query/eval.h"

#include "query/parser.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace esflow::query {
namespace {

const nlohmann::json kRow = nlohmann::json::parse(R"({
  "balance": 150, "limit": 99.5, "big": 18446744073709551615, "neg": -3,
  "owner": {"name": "Ada", "tier": {"level": 2}}, "open": true, "closed": false,
  "note": null, "tags": ["a", "b"], "quote": "say \"hi\"", "apos": "it's", "slash": "a\\b",
  "empty": ""
})");

struct row_case {
  std::string filter;
  bool expected;
};

void PrintTo(const row_case& c, std::ostream* os) { *os << '"' << c.filter << '"'; }

class eval_table : public ::testing::TestWithParam<row_case> {};

TEST_P(eval_table, matches_as_expected) {
  const auto& c = GetParam();
  auto p = parse_filter(c.filter);
  ASSERT_TRUE(p.ok()) << c.filter << ": " << p.err().message;
  EXPECT_EQ(matches(*p, "acc-7", 12, kRow), c.expected) << c.filter;
}

const std::vector<row_case> kCases = {
    // every comparison operator on an integer field
    {"balance = 150", true},
    {"balance == 150", true},
    {"balance = 151", false},
    {"balance != 150", false},
    {"balance != 151", true},
    {"balance < 151", true},
    {"balance < 150", false},
    {"balance <= 150", true},
    {"balance <= 149", false},
    {"balance > 149", true},
    {"balance > 150", false},
    {"balance >= 150", true},
    {"balance >= 151", false},
    {"neg < -2", true},
    {"neg = -3", true},
    // integers and floats compare numerically with each other
    {"balance = 150.0", true},
    {"balance < 150.5", true},
    {"limit > 99", true},
    {"limit < 100", true},
    {"limit = 99.5", true},
    {"limit >= 9.95e1", true},
    {"big > 0", true},
    {"big > 9223372036854775807", true},
    {"big = -1", false},
    {"neg < 1.5e300", true},
    // strings, both quotes, escapes
    {"owner.name = \"Ada\"", true},
    {"owner.name = 'Ada'", true},
    {"owner.name < 'Adb'", true},
    {"owner.name > 'Ad'", true},
    {"owner.name = 'ada'", false},
    {R"(quote = "say \"hi\"")", true},
    {R"(quote = 'say "hi"')", true},
    {R"(apos = 'it\'s')", true},
    {R"(apos = "it's")", true},
    {R"(slash = 'a\\b')", true},
    {"empty = ''", true},
    // nested paths
    {"owner.tier.level = 2", true},
    {"owner.tier.level >= 3", false},
    {"owner.tier = 2", false},
    {"owner.tier != 2", true},
    {"owner.name.first = null", true},
    // the row's own key and version
    {"key = 'acc-7'", true},
    {"key = \"acc-8\"", false},
    {"key > 'acc-1'", true},
    {"version = 12", true},
    {"version >= 12.0", true},
    {"version < 12", false},
    {"version in [1, 12]", true},
    {"key.x = null", true},
    // booleans and nulls
    {"open = true", true},
    {"open = false", false},
    {"closed = false", true},
    {"open != false", true},
    {"open > false", false},
    {"note = null", true},
    {"missing = null", true},
    {"missing != null", false},
    {"balance = null", false},
    {"balance != null", true},
    {"note < null", false},
    {"note <= null", false},
    // type mismatch: unequal and unordered, never an error
    {"balance = '150'", false},
    {"balance != '150'", true},
    {"balance < '200'", false},
    {"balance >= '1'", false},
    {"owner.name > 1", false},
    {"open = 1", false},
    {"tags = 'a'", false},
    {"tags != 'a'", true},
    {"missing < 5", false},
    {"missing != 5", true},
    // in-lists
    {"balance in [1, 150, 'x']", true},
    {"balance in [150.0]", true},
    {"balance in ['150']", false},
    {"balance in []", false},
    {"owner.name in ['Bob', 'Ada']", true},
    {"missing in [null]", true},
    {"missing in [1, 2]", false},
    {"key in ['acc-7']", true},
    // exists: a present field, even null; key and version always
    {"exists(balance)", true},
    {"exists(note)", true},
    {"exists(missing)", false},
    {"exists(owner.tier.level)", true},
    {"exists(owner.tier.rank)", false},
    {"exists(key)", true},
    {"exists(version)", true},
    {"exists(version.x)", false},
    // not > and > or, parentheses
    {"not balance = 1", true},
    {"not not balance = 150", true},
    {"balance = 1 or balance = 150 and open = false", false},
    {"balance = 150 or balance = 1 and open = false", true},
    {"(balance = 150 or balance = 1) and open = false", false},
    {"open = true and (balance = 1 or owner.name = 'Ada')", true},
    {"not balance = 150 or open = true", true},
    {"not (balance = 150 or open = false)", false},
    {"not balance = 150 and open = true", false},
    {"((((balance = 150))))", true},
    {"balance=150 and(open=true)", true},
    {"balance = 150 and open = true and owner.name = 'Ada' and not exists(missing)", true},
    {"balance = 1 or open = false or owner.name = 'Bob' or exists(x)", false},
    {"\tbalance\n=\r150 ", true},
};

INSTANTIATE_TEST_SUITE_P(filters, eval_table, ::testing::ValuesIn(kCases));

TEST(eval, non_object_row_has_only_key_and_version) {
  auto p = parse_filter("exists(a) or a = null and key = 'k' and version = 0");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(matches(*p, "k", 0, nlohmann::json()));
  EXPECT_TRUE(matches(*p, "k", 0, nlohmann::json::array({1})));
  EXPECT_FALSE(matches(*p, "j", 0, nlohmann::json::object()));
  EXPECT_TRUE(matches(*p, "x", 0, nlohmann::json{{"a", 1}}));
}

TEST(eval, unsigned_row_values_compare_exactly_with_integers) {
  auto p = parse_filter("n = 9007199254740993");
  ASSERT_TRUE(p.ok());
  // 2^53 + 1 differs from 2^53 only when integers are not compared as doubles.
  EXPECT_TRUE(matches(*p, "k", 0, nlohmann::json{{"n", 9007199254740993ULL}}));
  EXPECT_FALSE(matches(*p, "k", 0, nlohmann::json{{"n", 9007199254740992ULL}}));
  EXPECT_FALSE(matches(*p, "k", 0, nlohmann::json{{"n", 9007199254740992LL}}));
}

}  // namespace
}  // namespace esflow::query
