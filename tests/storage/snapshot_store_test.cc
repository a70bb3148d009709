#include "storage/snapshot_store.h"

#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace esflow::storage {
namespace {

schemas::snapshot snap(std::string tenant, std::string id, schemas::version_t v, std::string state) {
  schemas::snapshot s;
  s.tenant_id = std::move(tenant);
  s.aggregate_type = "Account";
  s.aggregate_id = std::move(id);
  s.version = v;
  s.log_position = 1000 + v;
  s.state_json = std::move(state);
  s.created_at = "2026-11-22T16:00:00.123Z";
  return s;
}

class snapshot_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = db::open({.path = _dir.str(), .mode = durability::relaxed});
    ASSERT_TRUE(d.ok()) << d.err().to_string();
    _db = std::move(d).value();
    _store = std::make_unique<snapshot_store>(*_db);
  }
  testing::temp_dir _dir;
  std::unique_ptr<db> _db;
  std::unique_ptr<snapshot_store> _store;
};

TEST_F(snapshot_store_test, stores_and_returns_every_field) {
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 10, R"({"open":true,"balance":5})")).ok());
  auto got = _store->get("acme", "Account", "acc-1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  const auto& s = **got;
  EXPECT_EQ(s.tenant_id, "acme");
  EXPECT_EQ(s.aggregate_type, "Account");
  EXPECT_EQ(s.aggregate_id, "acc-1");
  EXPECT_EQ(s.version, 10u);
  EXPECT_EQ(s.log_position, 1010u);
  EXPECT_EQ(s.state_json, R"({"open":true,"balance":5})");
  EXPECT_EQ(s.created_at, "2026-11-22T16:00:00.123Z");
}

TEST_F(snapshot_store_test, missing_snapshot_is_nullopt) {
  auto got = _store->get("acme", "Account", "nobody");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(snapshot_store_test, newer_version_replaces_older) {
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 10, "{\"v\":10}")).ok());
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 20, "{\"v\":20}")).ok());
  auto got = _store->get("acme", "Account", "acc-1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 20u);
  EXPECT_EQ((*got)->state_json, "{\"v\":20}");
}

TEST_F(snapshot_store_test, same_or_older_version_is_a_conflict) {
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 10, "{\"v\":10}")).ok());
  auto same = _store->put(snap("acme", "acc-1", 10, "{\"other\":1}"));
  ASSERT_FALSE(same.ok());
  EXPECT_EQ(same.err().code, errc::version_conflict);
  EXPECT_EQ(same.err().message, "snapshot version 10 is not newer than stored 10");
  auto older = _store->put(snap("acme", "acc-1", 5, "{}"));
  ASSERT_FALSE(older.ok());
  EXPECT_EQ(older.err().message, "snapshot version 5 is not newer than stored 10");
  EXPECT_EQ((*_store->get("acme", "Account", "acc-1"))->state_json, "{\"v\":10}");
}

TEST_F(snapshot_store_test, tenants_are_isolated) {
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 10, "{\"t\":\"acme\"}")).ok());
  // The same id under another tenant is another aggregate: version 3 is fine.
  ASSERT_TRUE(_store->put(snap("globex", "acc-1", 3, "{\"t\":\"globex\"}")).ok());
  EXPECT_EQ((*_store->get("acme", "Account", "acc-1"))->state_json, "{\"t\":\"acme\"}");
  EXPECT_EQ((*_store->get("globex", "Account", "acc-1"))->state_json, "{\"t\":\"globex\"}");
  EXPECT_FALSE(_store->get("initech", "Account", "acc-1")->has_value());
  EXPECT_FALSE(_store->get("", "Account", "acc-1")->has_value());
  // Separators cannot forge another tenant's key.
  ASSERT_TRUE(_store->put(snap("acme:Account", "acc-1", 1, "{}")).ok());
  EXPECT_EQ((*_store->get("acme", "Account", "acc-1"))->version, 10u);
}

TEST_F(snapshot_store_test, racing_puts_of_one_version_let_exactly_one_win) {
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      if (_store->put(snap("acme", "hot", 7, "{\"t\":" + std::to_string(t) + "}")).ok()) ++wins;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST_F(snapshot_store_test, survives_reopen) {
  ASSERT_TRUE(_store->put(snap("acme", "acc-1", 10, "{}")).ok());
  _store.reset();
  ASSERT_TRUE(_db->close().ok());
  auto d = db::open({.path = _dir.str()});
  ASSERT_TRUE(d.ok());
  _db = std::move(d).value();
  _store = std::make_unique<snapshot_store>(*_db);
  auto got = _store->get("acme", "Account", "acc-1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 10u);
}

}  // namespace
}  // namespace esflow::storage
