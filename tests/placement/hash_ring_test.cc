// The ring's documented hash and its balance and movement properties
// (placement/hash_ring.h, docs/contract.md "Gateway (the edge) and tenant placement").
#include "placement/hash_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace esflow::placement {
namespace {

std::vector<std::string> tenants(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("tenant-" + std::to_string(i));
  return out;
}

hash_ring ring_of(std::vector<std::string> nodes, int vnodes = k_default_vnodes) {
  auto r = hash_ring::build(std::move(nodes), vnodes);
  EXPECT_TRUE(r.ok()) << r.err().to_string();
  return std::move(r).value();
}

std::map<std::string, std::string> owners(const hash_ring& ring, const std::vector<std::string>& ts) {
  std::map<std::string, std::string> out;
  for (const auto& t : ts) out[t] = std::string(ring.owner(t).value());
  return out;
}

TEST(placement_hash_ring, the_documented_hash_is_the_first_8_bytes_of_sha256_big_endian) {
  // printf acme | sha256sum     -> 822b33ad87c148a0...
  EXPECT_EQ(ring_hash("acme"), 0x822b33ad87c148a0ULL);
  // printf 'node-a#0' | sha256sum -> f0395da18c0b14fa...
  EXPECT_EQ(vnode_point("node-a", 0), 0xf0395da18c0b14faULL);
  EXPECT_EQ(ring_hash("node-a#0"), vnode_point("node-a", 0));
  EXPECT_EQ(tenant_point("acme"), 0x822b33ad87c148a0ULL);
}

TEST(placement_hash_ring, the_empty_tenant_is_written_underscore) {
  // printf _ | sha256sum -> d2e2adf7177b7a8a...
  EXPECT_EQ(tenant_token(""), "_");
  EXPECT_EQ(tenant_point(""), 0xd2e2adf7177b7a8aULL);
  auto ring = ring_of({"node-1", "node-2", "node-3"});
  EXPECT_EQ(ring.owner(""), ring.owner("_"));
}

TEST(placement_hash_ring, owner_follows_the_documented_rule_as_a_linear_scan_computes_it) {
  // Another implementation: every vnode point, sorted by (point, node id),
  // the first >= the tenant's point, else the first.
  const std::vector<std::string> nodes = {"node-3", "node-1", "node-2"};
  std::vector<std::pair<std::uint64_t, std::string>> points;
  for (const auto& n : nodes)
    for (int i = 0; i < 128; ++i) points.emplace_back(ring_hash(n + "#" + std::to_string(i)), n);
  std::sort(points.begin(), points.end());
  auto ring = ring_of(nodes);
  EXPECT_EQ(ring.points(), 3u * 128u);
  for (const auto& t : tenants(300)) {
    const auto p = ring_hash(t);
    std::string expected = points.front().second;
    for (const auto& [point, node] : points) {
      if (point >= p) {
        expected = node;
        break;
      }
    }
    EXPECT_EQ(ring.owner(t), expected) << t;
  }
}

// With 128 vnodes a node's share of the ring varies by about 1/sqrt(128) =
// 8.8% of its mean, and 300 tenants add sampling noise: a node's count is
// 100 +- 12 (one sigma), so 90..110 is a property of these node names, not
// of every name triple (about 4 in 10 random triples meet it; "agg-1".."agg-3"
// get 116/107/77). The names are fixed, the hash is pinned, so this is exact.
TEST(placement_hash_ring, spreads_300_tenants_over_3_nodes_within_90_to_110_each) {
  auto ring = ring_of({"node-1", "node-2", "node-3"});
  std::map<std::string, int> count;
  for (const auto& [t, node] : owners(ring, tenants(300))) ++count[node];
  ASSERT_EQ(count.size(), 3u);
  for (const auto& [node, n] : count) {
    EXPECT_GE(n, 90) << node;
    EXPECT_LE(n, 110) << node;
  }
}

TEST(placement_hash_ring, adding_a_fourth_node_moves_about_a_quarter_and_only_to_it) {
  const auto ts = tenants(300);
  const auto before = owners(ring_of({"node-1", "node-2", "node-3"}), ts);
  const auto after = owners(ring_of({"node-1", "node-2", "node-3", "node-4"}), ts);
  int moved = 0;
  for (const auto& t : ts) {
    if (before.at(t) == after.at(t)) continue;
    ++moved;
    EXPECT_EQ(after.at(t), "node-4") << t << " moved from " << before.at(t);
  }
  EXPECT_GE(moved, static_cast<int>(0.15 * 300));
  EXPECT_LE(moved, static_cast<int>(0.35 * 300));
}

TEST(placement_hash_ring, removing_a_node_moves_only_its_tenants) {
  const auto ts = tenants(300);
  const auto before = owners(ring_of({"node-1", "node-2", "node-3"}), ts);
  const auto after = owners(ring_of({"node-1", "node-3"}), ts);
  int moved = 0;
  for (const auto& t : ts) {
    if (before.at(t) == "node-2") {
      EXPECT_NE(after.at(t), "node-2");
      ++moved;
    } else {
      EXPECT_EQ(after.at(t), before.at(t)) << t;
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(placement_hash_ring, node_order_and_duplicates_do_not_change_owners) {
  const auto ts = tenants(100);
  EXPECT_EQ(owners(ring_of({"node-1", "node-2", "node-3"}), ts),
            owners(ring_of({"node-3", "node-2", "node-1", "node-2"}), ts));
}

TEST(placement_hash_ring, an_empty_ring_owns_nothing) {
  hash_ring empty;
  EXPECT_FALSE(empty.owner("acme").has_value());
  EXPECT_FALSE(ring_of({}).owner("acme").has_value());
}

TEST(placement_hash_ring, rejects_vnodes_out_of_range_and_empty_node_ids) {
  auto zero = hash_ring::build({"a"}, 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.err().code, errc::invalid_config);
  EXPECT_NE(zero.err().message.find("vnodes 0"), std::string::npos) << zero.err().message;
  auto empty_id = hash_ring::build({""});
  ASSERT_FALSE(empty_id.ok());
  EXPECT_EQ(empty_id.err().message, "empty node id in the ring");
}

}  // namespace
}  // namespace esflow::placement
