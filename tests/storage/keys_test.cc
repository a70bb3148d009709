#include "storage/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace esflow::storage::keys {
namespace {

TEST(keys, components_are_length_prefixed) {
  EXPECT_EQ(aggregate("ab", "T", ""), std::string("\x02"
                                                  "ab"
                                                  "\x01"
                                                  "T"
                                                  "\x00",
                                                  6));
  EXPECT_EQ(aggregate("", "", ""), std::string(3, '\0'));
}

TEST(keys, separators_in_ids_cannot_forge_another_tenant) {
  std::set<std::string> seen;
  const std::vector<std::vector<std::string>> triples = {
      {"a", "b:c", "d"},
      {"a:b", "c", "d"},
      {"a", "b", "c:d"},
      {"a", "b\x01", "c"},
      {"a", "b",
       "\x01"
       "c"},
      {"", "ab", "c"},
      {"a", "", "bc"},
      {"abc", "", ""},
      {"", "", "abc"},
      {"a\x01"
       "b",
       "", ""},
  };
  for (const auto& t : triples)
    EXPECT_TRUE(seen.insert(aggregate(t[0], t[1], t[2])).second) << t[0] << "|" << t[1];
}

TEST(keys, no_aggregate_key_is_a_prefix_of_another) {
  const std::vector<std::string> ids = {"a",
                                        "ab",
                                        "abc",
                                        "",
                                        std::string(254, 'x'),
                                        std::string(255, 'x'),
                                        std::string(256, 'x'),
                                        std::string("a\0", 2)};
  for (const auto& x : ids) {
    for (const auto& y : ids) {
      if (x == y) continue;
      auto kx = aggregate("t", "T", x);
      auto ky = aggregate_version("t", "T", y, 7);
      EXPECT_FALSE(ky.starts_with(kx)) << x.size() << " vs " << y.size();
    }
  }
  // Tenant prefixes: "a" never covers tenant "ab".
  EXPECT_FALSE(aggregate("ab", "T", "x").starts_with(tenant_prefix("a")));
  EXPECT_TRUE(aggregate("a", "T", "x").starts_with(tenant_prefix("a")));
  EXPECT_FALSE(aggregate("a", "T", "x").starts_with(tenant_prefix("")));
}

TEST(keys, long_components_round_trip) {
  std::string key;
  std::string big(70000, 'q');
  put_str(key, "t");
  put_str(key, big);
  put_str(key, "");
  std::size_t pos = 0;
  std::string_view a, b, c;
  ASSERT_TRUE(get_str(key, pos, a));
  ASSERT_TRUE(get_str(key, pos, b));
  ASSERT_TRUE(get_str(key, pos, c));
  EXPECT_EQ(a, "t");
  EXPECT_EQ(b, big);
  EXPECT_EQ(c, "");
  EXPECT_EQ(pos, key.size());
  EXPECT_FALSE(get_str(key, pos, a));
  std::size_t p2 = 0;
  EXPECT_FALSE(get_str(std::string_view(key).substr(0, 4), p2, a) &&
               get_str(std::string_view(key).substr(0, 4), p2, b));
}

TEST(keys, numbers_sort_numerically) {
  const std::vector<std::uint64_t> values = {0,    1, 2, 255, 256, 65535, 65536, 1ULL << 32, (1ULL << 56) + 3,
                                             ~0ULL};
  std::vector<std::string> encoded;
  for (auto v : values) {
    encoded.push_back(aggregate_version("t", "T", "x", v));
    EXPECT_EQ(get_u64_be(position(v)), v);
  }
  EXPECT_TRUE(std::is_sorted(encoded.begin(), encoded.end()));
  EXPECT_LT(position(9), position(10));  // as numbers, not as decimal text
}

TEST(keys, prefix_successor_bounds_the_prefix) {
  EXPECT_EQ(prefix_successor("ab"), "ac");
  EXPECT_EQ(prefix_successor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_successor(std::string("\xff\xff", 2)), "");
  auto p = aggregate("t", "T", "x");
  EXPECT_LT(aggregate_version("t", "T", "x", ~0ULL), prefix_successor(p));
}

TEST(keys, dedupe_keys_keep_tenants_apart) {
  EXPECT_NE(dedupe("a", "bc"), dedupe("ab", "c"));
  EXPECT_NE(dedupe("", "abc"), dedupe("abc", ""));
  EXPECT_NE(quarantine("src", 1), quarantine(std::string("src\0", 4), 1));
}

}  // namespace
}  // namespace esflow::storage::keys
