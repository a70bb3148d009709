// The placement snapshot: explicit entries over the ring, aggregate nodes
// only on the ring, the empty tenant, hosted tenants (placement/placement_map.h).
#include "placement/placement_map.h"

#include <gtest/gtest.h>

namespace esflow::placement {
namespace {

node_registration reg(std::string id, std::vector<std::string> kinds = {"aggregate"}) {
  return {id, std::move(kinds), "127.0.0.1:8080", "", "2026-12-05T12:00:00.000Z"};
}

placement_map map_of(placement_map::node_table nodes, placement_map::tenant_table tenants) {
  auto m = placement_map::make(std::move(nodes), std::move(tenants));
  EXPECT_TRUE(m.ok()) << m.err().to_string();
  return std::move(m).value();
}

placement_map three_nodes(placement_map::tenant_table tenants = {}) {
  return map_of({{"agg-1", reg("agg-1")}, {"agg-2", reg("agg-2")}, {"agg-3", reg("agg-3")}},
                std::move(tenants));
}

TEST(placement_map, an_explicit_entry_overrides_the_ring) {
  const auto ring_only = three_nodes();
  const auto ring_owner = ring_only.owner("acme").value();
  const std::string other = ring_owner == "agg-1" ? "agg-2" : "agg-1";
  const auto m = three_nodes({{"acme", other}});
  EXPECT_EQ(m.owner("acme"), other);
  EXPECT_EQ(m.owner("globex"), ring_only.owner("globex"));  // others keep the ring's owner
}

TEST(placement_map, an_empty_entry_leaves_the_tenant_to_the_ring) {
  const auto m = three_nodes({{"acme", ""}});
  EXPECT_EQ(m.owner("acme"), m.ring().owner("acme").value());
  EXPECT_EQ(m.listed_tenants(), std::vector<std::string>{"acme"});
}

TEST(placement_map, an_explicit_entry_wins_even_for_a_node_not_registered) {
  const auto m = three_nodes({{"acme", "agg-9"}});
  EXPECT_EQ(m.owner("acme"), "agg-9");
  EXPECT_EQ(m.registration("agg-9"), nullptr);
}

TEST(placement_map, the_empty_tenant_is_listed_and_looked_up_as_underscore) {
  const auto m = three_nodes({{"", "agg-2"}});
  EXPECT_EQ(m.listed_tenants(), std::vector<std::string>{"_"});
  EXPECT_EQ(m.owner(""), "agg-2");
  EXPECT_EQ(m.owner("_"), "agg-2");
  EXPECT_EQ(tenant_key(""), "tenants._");
}

TEST(placement_map, only_aggregate_nodes_are_on_the_ring) {
  const auto m = map_of({{"agg-1", reg("agg-1")}, {"proj-1", reg("proj-1", {"projection"})}}, {});
  EXPECT_EQ(m.ring().nodes(), std::vector<std::string>{"agg-1"});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(m.owner("t-" + std::to_string(i)), "agg-1");
  ASSERT_NE(m.registration("proj-1"), nullptr);
  EXPECT_EQ(m.registration("proj-1")->kinds, std::vector<std::string>{"projection"});
}

TEST(placement_map, no_aggregate_node_means_no_owner) {
  const auto m = map_of({{"proj-1", reg("proj-1", {"projection"})}}, {});
  EXPECT_FALSE(m.owner("acme").has_value());
  EXPECT_FALSE(placement_map().owner("acme").has_value());
}

TEST(placement_map, tenants_hosted_by_lists_the_listed_tenants_a_node_owns) {
  const auto m =
      three_nodes({{"acme", "agg-1"}, {"globex", "agg-2"}, {"initech", "agg-1"}, {"umbrella", ""}});
  auto on1 = m.tenants_hosted_by("agg-1");
  const auto umbrella = m.owner("umbrella").value();
  std::vector<std::string> expected = {"acme", "initech"};
  if (umbrella == "agg-1") expected.push_back("umbrella");
  EXPECT_EQ(on1, expected);
  EXPECT_EQ(m.tenants_hosted_by("agg-9"), std::vector<std::string>{});
}

TEST(placement_map, json_holds_nodes_and_tenants) {
  const auto m = map_of({{"agg-1", reg("agg-1")}}, {{"acme", "agg-1"}, {"", ""}});
  const auto j = m.json();
  EXPECT_EQ(j["nodes"]["agg-1"]["node"], "agg-1");
  EXPECT_EQ(j["nodes"]["agg-1"]["kinds"], nlohmann::json::array({"aggregate"}));
  EXPECT_EQ(j["nodes"]["agg-1"]["http"], "127.0.0.1:8080");
  EXPECT_EQ(j["nodes"]["agg-1"]["updated"], "2026-12-05T12:00:00.000Z");
  EXPECT_EQ(j["tenants"]["acme"], "agg-1");
  EXPECT_EQ(j["tenants"]["_"], "");
}

TEST(placement_map, rejects_bad_ids_naming_the_key) {
  auto bad_tenant = placement_map::make({}, {{"a.b", "agg-1"}});
  ASSERT_FALSE(bad_tenant.ok());
  EXPECT_EQ(bad_tenant.err().code, errc::invalid_config);
  EXPECT_EQ(bad_tenant.err().message, "tenants.a.b: tenant id is not [A-Za-z0-9_-]{1,64}");
  auto mismatch = placement_map::make({{"agg-1", reg("agg-2")}}, {});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.err().message, "nodes.agg-1: registration names node 'agg-2'");
  EXPECT_FALSE(is_valid_placement_id(std::string(65, 'a')));
  EXPECT_TRUE(is_valid_placement_id(std::string(64, 'a')));
}

TEST(placement_map, a_registration_round_trips_and_bad_json_is_named) {
  const auto r = reg("agg-1");
  auto back = node_registration::parse(r.json().dump(), "nodes.agg-1");
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back.value(), r);
  auto bad = node_registration::parse("{\"node\": 3}", "nodes.agg-1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, "nodes.agg-1: field 'node' is not a string");
}

}  // namespace
}  // namespace esflow::placement
