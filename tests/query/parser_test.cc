// parse_filter(): the plan's shape, and every rejection is invalid_query with the
// exact message naming the column (docs/contract.md, "Projection node": Filters).
#include "query/parser.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace esflow::query {
namespace {

TEST(parser, precedence_builds_or_of_ands_and_flattens_chains) {
  auto p = parse_filter("a = 1 or not b == 'x' and c in [1, 2.5, true, null] or exists(d.e) or f >= -2");
  ASSERT_TRUE(p.ok()) << p.err().message;
  const node& root = p->root;
  ASSERT_EQ(root.k, node::kind::or_);
  ASSERT_EQ(root.children.size(), 4u);
  EXPECT_EQ(root.children[0].k, node::kind::compare);
  EXPECT_EQ(root.children[0].field.text, "a");
  EXPECT_EQ(std::get<std::int64_t>(root.children[0].literals[0]), 1);

  const node& conj = root.children[1];
  ASSERT_EQ(conj.k, node::kind::and_);
  ASSERT_EQ(conj.children.size(), 2u);
  ASSERT_EQ(conj.children[0].k, node::kind::not_);
  const node& cmp = conj.children[0].children[0];
  EXPECT_EQ(cmp.op, cmp_op::eq);
  EXPECT_EQ(std::get<std::string>(cmp.literals[0]), "x");
  const node& in = conj.children[1];
  ASSERT_EQ(in.k, node::kind::in);
  ASSERT_EQ(in.literals.size(), 4u);
  EXPECT_EQ(std::get<double>(in.literals[1]), 2.5);
  EXPECT_TRUE(std::get<bool>(in.literals[2]));
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(in.literals[3]));

  EXPECT_EQ(root.children[2].k, node::kind::exists);
  EXPECT_EQ(root.children[2].field.segments, (std::vector<std::string>{"d", "e"}));
  EXPECT_EQ(root.children[3].op, cmp_op::ge);
  EXPECT_EQ(std::get<std::int64_t>(root.children[3].literals[0]), -2);
}

TEST(parser, every_operator_spelling) {
  const std::vector<std::pair<std::string, cmp_op>> ops = {
      {"=", cmp_op::eq},  {"==", cmp_op::eq}, {"!=", cmp_op::ne}, {"<", cmp_op::lt},
      {"<=", cmp_op::le}, {">", cmp_op::gt},  {">=", cmp_op::ge}};
  for (const auto& [text, op] : ops) {
    auto p = parse_filter("a " + text + " 1");
    ASSERT_TRUE(p.ok()) << text;
    EXPECT_EQ(p->root.op, op) << text;
  }
}

TEST(parser, accepts_the_limits_exactly) {
  std::string text = "a = 1";
  text.resize(max_filter_bytes, ' ');
  EXPECT_TRUE(parse_filter(text).ok());
  const std::string parens(max_nesting_depth, '(');
  const std::string closes(max_nesting_depth, ')');
  EXPECT_TRUE(parse_filter(parens + "a = 1" + closes).ok());
  std::string nots;
  for (int i = 0; i < max_nesting_depth; ++i) nots += "not ";
  EXPECT_TRUE(parse_filter(nots + "a = 1").ok());
}

struct error_case {
  std::string filter;
  std::string message;
};

void PrintTo(const error_case& c, std::ostream* os) { *os << '"' << c.filter.substr(0, 60) << '"'; }

class parser_errors : public ::testing::TestWithParam<error_case> {};

TEST_P(parser_errors, invalid_query_names_the_column) {
  const auto& c = GetParam();
  auto p = parse_filter(c.filter);
  ASSERT_FALSE(p.ok()) << c.filter;
  EXPECT_EQ(p.err().code, errc::invalid_query);
  EXPECT_EQ(p.err().code_text, "invalid_query");
  EXPECT_EQ(p.err().message, c.message) << c.filter;
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

const std::vector<error_case> kErrors = {
    // the contract's own example shape
    {"owner.name > ", "column 14: expected a literal after '>'"},
    {"balance > and x", "column 11: expected a literal after '>'"},
    {"balance = )", "column 11: expected a literal after '='"},
    // unterminated strings and escapes
    {"name = 'abc", "column 8: unterminated string"},
    {"name = \"abc'", "column 8: unterminated string"},
    {"a = 'x\\", "column 5: unterminated string"},
    {"a = 'x\\n'", "column 7: unknown escape '\\n' in a string"},
    // unknown operators
    {"balance <> 5", "column 9: unknown operator '<>'"},
    {"balance =< 5", "column 9: unknown operator '=<'"},
    {"balance ! 5", "column 9: unknown operator '!'"},
    {"balance ~ 5", "column 9: unexpected character '~'"},
    {"balance 5", "column 9: expected an operator or 'in' after 'balance', found '5'"},
    {"balance", "column 8: expected an operator or 'in' after 'balance', found the end of the filter"},
    // trailing garbage
    {"balance = 1 open", "column 13: expected 'and', 'or' or the end of the filter, found 'open'"},
    {"balance = 1 'x'", "column 13: expected 'and', 'or' or the end of the filter, found a string"},
    {"a = 1 and", "column 10: expected a field path, 'not', 'exists' or '(', found the end of the filter"},
    // empty
    {"", "column 1: empty filter"},
    {"   ", "column 4: empty filter"},
    // unbalanced parentheses
    {"(balance = 1", "column 13: expected ')' to close '(' at column 1, found the end of the filter"},
    {"a = 1 and ((b = 2) or c = 3",
     "column 28: expected ')' to close '(' at column 11, found the end of the filter"},
    {"balance = 1)", "column 12: ')' without a matching '('"},
    {"()", "column 2: expected a field path, 'not', 'exists' or '(', found ')'"},
    // in without a list
    {"balance in 5", "column 12: expected '[' after 'in'"},
    {"balance in", "column 11: expected '[' after 'in'"},
    {"balance in [1, 2", "column 17: expected ',' or ']' in the list, found the end of the filter"},
    {"balance in [1 2]", "column 15: expected ',' or ']' in the list, found '2'"},
    {"balance in [1,]", "column 15: expected a literal in the list"},
    // exists
    {"exists balance", "column 8: expected '(' after 'exists'"},
    {"exists(balance", "column 15: expected ')' after the path in 'exists('"},
    {"exists()", "column 8: expected a field path, 'not', 'exists' or '(', found ')'"},
    // paths and literals
    {"5 = a", "column 1: expected a field path, 'not', 'exists' or '(', found '5'"},
    {"and = 1", "column 1: expected a field path, 'not', 'exists' or '(', found 'and'"},
    {"owner. = 1", "column 8: expected a field name after '.', found '='"},
    {"a = b", "column 5: expected a literal after '='"},
    {"a = 9223372036854775808", "column 5: integer out of range"},
    {"a = 1e999", "column 5: number out of range"},
    {"a = 12abc", "column 7: unexpected character 'a' in a number"},
    {"a = 1.", "column 7: expected a digit after '.'"},
    {"a = 1e+", "column 8: expected a digit in the exponent"},
    // non-ASCII and control characters; columns count characters, not bytes
    {"balance = 1 and \xC3\xA9 = 2", "column 17: unexpected non-ASCII character"},
    {"name = '\xC3\xA9' and ~", "column 16: unexpected character '~'"},
    {"\xFF", "column 1: unexpected non-ASCII character"},
    {"a = 1\x01", "column 6: unexpected control character 0x01"},
    // bounds
    {std::string(max_filter_bytes + 1, ' '), "column 4097: filter longer than 4096 bytes"},
    {repeat("(", max_nesting_depth + 1) + "a = 1" + repeat(")", max_nesting_depth + 1),
     "column 65: nesting deeper than 64 levels"},
    {repeat("not ", max_nesting_depth + 1) + "a = 1", "column 257: nesting deeper than 64 levels"},
    {repeat("not (", 33) + "a = 1" + repeat(")", 33),
     "column 161: nesting deeper than 64 levels"},  // the 33rd not is level 65
};

INSTANTIATE_TEST_SUITE_P(cases, parser_errors, ::testing::ValuesIn(kErrors));

TEST(parser, deep_nesting_far_beyond_the_limit_fails_without_recursing) {
  auto p = parse_filter(repeat("(", 4000));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.err().message, "column 65: nesting deeper than 64 levels");
}

}  // namespace
}  // namespace esflow::query
