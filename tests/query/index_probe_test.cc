// index_candidate(): which term of a top-level `and` chain a secondary-index scan
// may start from, and when a full scan is the only honest answer.
#include "query/index_probe.h"

#include "query/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace esflow::query {
namespace {

const std::set<std::string> kIndexed = {"balance", "open", "owner.name"};

std::optional<index_probe> probe(const std::string& filter) {
  auto p = parse_filter(filter);
  EXPECT_TRUE(p.ok()) << filter;
  return index_candidate(*p, kIndexed);
}

TEST(index_candidate, single_comparison_on_an_indexed_field) {
  auto c = probe("balance >= 100");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->k, index_probe::kind::compare);
  EXPECT_EQ(c->field, "balance");
  EXPECT_EQ(c->op, cmp_op::ge);
  ASSERT_EQ(c->literals.size(), 1u);
  EXPECT_EQ(std::get<std::int64_t>(c->literals[0]), 100);
}

TEST(index_candidate, first_usable_term_of_an_and_chain) {
  auto c = probe("exists(x) and balance != 3 and owner.name = 'Ada' and balance < 5");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->field, "owner.name");
  EXPECT_EQ(c->op, cmp_op::eq);
  EXPECT_EQ(std::get<std::string>(c->literals[0]), "Ada");
}

TEST(index_candidate, in_list) {
  auto c = probe("note = 'x' and open in [true, false]");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->k, index_probe::kind::in);
  EXPECT_EQ(c->field, "open");
  EXPECT_EQ(c->literals.size(), 2u);
}

TEST(index_candidate, inside_parentheses_is_the_same_chain) {
  auto c = probe("(balance = 1)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->field, "balance");
}

TEST(index_candidate, none_when_a_full_scan_is_needed) {
  for (const char* f : {
           "balance = 1 or open = true",             // or at the top
           "not balance = 1",                        // negation
           "balance != 1",                           // != matches rows the index lacks
           "balance = null",                         // missing fields are not indexed
           "balance in [1, null]",                   // same
           "limit = 1 and exists(balance)",          // not indexed / not a comparison
           "owner.tier = 1",                         // a path that is not listed
           "key = 'a' and version = 1",              // the row's own fields
           "(balance = 1 or open = true) and x = 2"  // nested or
       }) {
    EXPECT_FALSE(probe(f)) << f;
  }
}

TEST(index_candidate, nothing_indexed) {
  auto p = parse_filter("balance = 1");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(index_candidate(*p, {}));
}

}  // namespace
}  // namespace esflow::query
