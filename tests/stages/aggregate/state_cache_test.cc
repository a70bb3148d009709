// The state cache: LRU bound, committed vs pending heads, tokens.
#include "stages/aggregate/state_cache.h"

#include <gtest/gtest.h>

namespace esflow::aggregate {
namespace {

state_head head(schemas::version_t v, std::string state, std::uint64_t token) {
  return state_head{v, std::move(state), 0, token};
}

TEST(state_cache, misses_then_hits_a_loaded_head) {
  state_cache c(1 << 20);
  EXPECT_FALSE(c.committed("k"));
  auto h = c.insert_loaded("k", head(3, "{}", 7));
  EXPECT_EQ(h.token, 7u);
  auto got = c.committed("k");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, 3u);
  EXPECT_EQ(c.stats().hits, 1u);
  EXPECT_EQ(c.stats().misses, 1u);
}

TEST(state_cache, an_older_load_never_replaces_a_newer_head) {
  state_cache c(1 << 20);
  c.commit("k", head(5, "new", 9));
  auto h = c.insert_loaded("k", head(4, "old", 10));
  EXPECT_EQ(h.version, 5u);
  EXPECT_EQ(h.token, 9u);
  EXPECT_EQ(c.committed("k")->state_json, "new");
}

TEST(state_cache, pending_heads_chain_and_clear_on_commit) {
  state_cache c(1 << 20);
  c.insert_loaded("k", head(0, "s0", 1));
  c.set_pending("k", 1, head(1, "s1", 2));
  c.set_pending("k", 2, head(2, "s2", 3));
  EXPECT_EQ(c.latest("k")->token, 3u);
  c.set_pending("k", 1, head(2, "stale", 4));  // not based on the newest head: ignored
  EXPECT_EQ(c.latest("k")->state_json, "s2");
  c.commit("k", head(1, "s1", 2));
  EXPECT_EQ(c.latest("k")->version, 2u);  // the newer pending head stays
  EXPECT_EQ(c.committed_token("k"), 2u);
  c.commit("k", head(2, "s2", 3));
  EXPECT_EQ(c.latest("k")->token, 3u);
  c.set_pending("k", 3, head(3, "s3", 5));
  c.drop_pending("k");
  EXPECT_EQ(c.latest("k")->version, 2u);
  c.invalidate("k");
  EXPECT_FALSE(c.latest("k"));
  EXPECT_EQ(c.committed_token("k"), 0u);
}

TEST(state_cache, evicts_least_recently_used_beyond_its_bound) {
  state_cache c(16 * 1024, 1);
  const std::string big(1000, 'x');
  for (int i = 0; i < 100; ++i) c.insert_loaded("k" + std::to_string(i), head(1, big, i + 1));
  const auto s = c.stats();
  EXPECT_LE(s.bytes, 16u * 1024);
  EXPECT_GT(s.evictions, 80u);
  EXPECT_TRUE(c.committed("k99"));
  EXPECT_FALSE(c.committed("k0"));
}

TEST(state_cache, tokens_are_unique_and_non_zero) {
  state_cache c(1024);
  auto a = c.next_token();
  auto b = c.next_token();
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace esflow::aggregate
