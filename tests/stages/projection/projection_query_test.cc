// The projection node over HTTP (docs/contract.md "Projection node",
// "Reading your own writes"), on both event-log backends: rows equal the fold
// of their events, the index path and the scan path agree with a reference
// model on random filters, read-your-writes with min_position, cursors under
// concurrent writes, tenant isolation, and every bad request answered with
// its contract code.
#include "storage/node_store.h"
#include "tests/stages/projection/projection_node.h"

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace esflow::projection_test {
namespace {

std::string backend_name(const ::testing::TestParamInfo<backend>& i) {
  return i.param == backend::embedded ? "embedded" : "jetstream";
}

class projection_query : public ::testing::TestWithParam<backend> {};

TEST_P(projection_query, readme_deposit_then_query_with_min_position_sees_the_write) {
  projection_node node(GetParam());
  node.accepted("acme", "acc-1", open_account(0));
  const auto p = node.accepted("acme", "acc-1", deposit(100));
  ASSERT_GT(p, 0U);
  // No sleep: min_position makes the query wait for the view to reach the write.
  auto a =
      node.query_ok("acme", "accounts",
                    {{"filter", "balance > 50"}, {"min_position", std::to_string(p)}, {"wait_ms", "5000"}});
  ASSERT_EQ(a["rows"].size(), 1U) << a.dump();
  EXPECT_EQ(a["rows"][0]["key"], "acc-1");
  EXPECT_EQ(a["rows"][0]["version"], 2);
  EXPECT_EQ(a["rows"][0]["row"], json({{"balance", 100}, {"open", true}}));
  EXPECT_GE(a["position"].get<std::uint64_t>(), p);
  EXPECT_TRUE(a["next_cursor"].is_null());
}

// A reference model of the Account domain beside random traffic, then random
// filters: the index path (a leading indexed comparison) and the scan path
// (the same condition behind `not`, which no index serves) must both return
// exactly the model's rows.
TEST_P(projection_query, index_path_and_scan_path_equal_the_reference_fold_on_random_filters) {
  projection_node node(GetParam());
  std::mt19937_64 rng(20261205);
  struct account {
    std::int64_t balance = 0;
    bool open = false;
    int deposits = 0;
  };
  std::map<std::string, account> model;
  std::uint64_t last = 0;
  for (int i = 0; i < 60; ++i) {
    const auto id = "acc-" + std::to_string(i);
    const auto initial = static_cast<std::int64_t>(rng() % 200);
    last = node.accepted("acme", id, open_account(initial));
    model[id] = {initial, true, 0};
  }
  for (int i = 0; i < 240; ++i) {
    const auto id = "acc-" + std::to_string(rng() % 60);
    auto& m = model[id];
    const auto roll = rng() % 10;
    if (roll < 5) {
      const auto amount = static_cast<std::int64_t>(1 + rng() % 100);
      if (!m.open) continue;
      last = node.accepted("acme", id, deposit(amount));
      m.balance += amount;
      ++m.deposits;
    } else if (roll < 9) {
      const auto amount = static_cast<std::int64_t>(1 + rng() % 150);
      auto j = node.command("acme", id, withdraw(amount));
      if (m.open && m.balance >= amount) {
        ASSERT_EQ(j.value("status", ""), "accepted") << j.dump();
        last = j["position"].get<std::uint64_t>();
        m.balance -= amount;
      } else {
        ASSERT_EQ(j.value("status", ""), "rejected") << j.dump();
      }
    } else if (m.open && m.balance == 0) {
      last = node.accepted("acme", id, close_account());
      m.open = false;
    }
  }
  node.wait_for_position(last);

  // Every row equals its aggregate's state (the fold of its events).
  auto rows = node.all_rows("acme", "accounts", {{"limit", "17"}});
  ASSERT_EQ(rows.size(), model.size());
  for (const auto& r : rows) {
    const auto& m = model.at(r["key"].get<std::string>());
    EXPECT_EQ(r["row"], json({{"balance", m.balance}, {"open", m.open}})) << r.dump();
  }
  // The program view deletes closed accounts and counts deposits.
  std::size_t open_accounts = 0;
  for (const auto& [id, m] : model) open_accounts += m.open ? 1 : 0;
  auto activity = node.all_rows("acme", "account_activity", {});
  ASSERT_EQ(activity.size(), open_accounts);
  for (const auto& r : activity)
    EXPECT_EQ(r["row"]["deposits"], model.at(r["key"].get<std::string>()).deposits);

  const char* ops[] = {">", ">=", "<", "<=", "="};
  for (int round = 0; round < 40; ++round) {
    const auto x = static_cast<std::int64_t>(rng() % 400);
    const std::string op = ops[rng() % 5];
    const bool with_open = rng() % 2 == 0;
    std::set<std::string> expected;
    for (const auto& [id, m] : model) {
      bool ok = op == ">"    ? m.balance > x
                : op == ">=" ? m.balance >= x
                : op == "<"  ? m.balance < x
                : op == "<=" ? m.balance <= x
                             : m.balance == x;
      if (with_open) ok = ok && m.open;
      if (ok) expected.insert(id);
    }
    const std::string tail = with_open ? " and open = true" : "";
    const std::string index_filter = "balance " + op + " " + std::to_string(x) + tail;
    const std::string negated = op == ">"    ? "<="
                                : op == ">=" ? "<"
                                : op == "<"  ? ">="
                                : op == "<=" ? ">"
                                             : "!=";
    const std::string scan_filter = "not (balance " + negated + " " + std::to_string(x) + ")" + tail;
    for (const auto& f : {index_filter, scan_filter}) {
      std::set<std::string> got;
      for (const auto& r : node.all_rows("acme", "accounts", {{"filter", f}, {"limit", "7"}})) {
        EXPECT_TRUE(got.insert(r["key"].get<std::string>()).second) << f << ": a row twice";
      }
      EXPECT_EQ(got, expected) << f;
    }
    // `in` over the index, and an order_by on the indexed field streams in order.
    std::set<std::string> in_expected;
    for (const auto& [id, m] : model)
      if (m.balance == x || m.balance == x + 1) in_expected.insert(id);
    std::set<std::string> in_got;
    for (const auto& r :
         node.all_rows("acme", "accounts",
                       {{"filter", "balance in [" + std::to_string(x) + ", " + std::to_string(x + 1) + "]"}}))
      in_got.insert(r["key"].get<std::string>());
    EXPECT_EQ(in_got, in_expected);
  }
  auto ordered = node.all_rows("acme", "accounts", {{"order_by", "balance"}, {"limit", "9"}});
  ASSERT_EQ(ordered.size(), model.size());
  for (std::size_t i = 1; i < ordered.size(); ++i)
    EXPECT_LE(ordered[i - 1]["row"]["balance"].get<std::int64_t>(),
              ordered[i]["row"]["balance"].get<std::int64_t>());
  auto desc = node.all_rows("acme", "accounts", {{"order_by", "balance:desc"}, {"limit", "11"}});
  ASSERT_EQ(desc.size(), model.size());
  for (std::size_t i = 1; i < desc.size(); ++i)
    EXPECT_GE(desc[i - 1]["row"]["balance"].get<std::int64_t>(),
              desc[i]["row"]["balance"].get<std::int64_t>());
}

TEST_P(projection_query, tenants_never_see_each_others_rows_or_cursors) {
  projection_node node(GetParam());
  std::uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    const auto id = "acc-" + std::to_string(i);
    node.accepted("acme", id, open_account(1000 + i));
    last = node.accepted("globex", id, open_account(i));
  }
  node.wait_for_position(last);
  for (const std::string f : {"", "balance >= 0", "balance >= 1000", "key = \"acc-1\"", "exists(balance)",
                              "not (balance < 0)", "open = true or open = false"}) {
    httplib::Params p{{"limit", "2"}};
    if (!f.empty()) p.emplace("filter", f);
    for (const auto& r : node.all_rows("globex", "accounts", p))
      EXPECT_LT(r["row"]["balance"].get<std::int64_t>(), 1000) << f << ": acme's row seen by globex";
  }
  EXPECT_EQ(node.all_rows("globex", "accounts", {{"filter", "balance >= 1000"}}).size(), 0U);
  // A cursor acme was given is refused for globex, whatever else matches.
  auto a = node.query_ok("acme", "accounts", {{"limit", "2"}});
  ASSERT_TRUE(a["next_cursor"].is_string());
  auto r =
      node.query("globex", "accounts", {{"limit", "2"}, {"cursor", a["next_cursor"].get<std::string>()}});
  http_test::expect_rejection(r, 400, "invalid_query", "foreign cursor");
}

// Key-order pages while other clients write: no row twice; every row that
// existed before the first page is seen.
TEST_P(projection_query, cursors_are_stable_under_concurrent_writes) {
  projection_node node(GetParam());
  std::uint64_t last = 0;
  for (int i = 0; i < 80; ++i)
    last = node.accepted("acme", "acc-" + std::to_string(1000 + i * 2), open_account(i));
  node.wait_for_position(last);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    httplib::Client c(node.url());
    for (int i = 0; i < 400 && !stop; ++i) {
      json body = {{"aggregate_type", "Account"},
                   {"aggregate_id", "acc-" + std::to_string(1001 + (i % 80) * 2)},
                   {"payload", open_account(i)}};
      c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body.dump(), "application/json");
      json dep = {{"aggregate_type", "Account"},
                  {"aggregate_id", "acc-" + std::to_string(1000 + (i % 80) * 2)},
                  {"payload", deposit(1)}};
      c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, dep.dump(), "application/json");
    }
  });
  std::set<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    httplib::Params p{{"limit", "5"}};
    if (!cursor.empty()) p.emplace("cursor", cursor);
    auto a = node.query_ok("acme", "accounts", p);
    for (const auto& r : a["rows"])
      EXPECT_TRUE(seen.insert(r["key"].get<std::string>()).second) << "twice: " << r;
    if (a["next_cursor"].is_null()) break;
    cursor = a["next_cursor"].get<std::string>();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop = true;
  writer.join();
  for (int i = 0; i < 80; ++i) EXPECT_TRUE(seen.count("acc-" + std::to_string(1000 + i * 2))) << i;
}

// Pages in index order while other clients move rows along that order
// (deposits raise balances): every page reads the snapshot the first one
// took, so no row comes twice and none that existed at the start is missed.
TEST_P(projection_query, index_order_cursors_are_stable_while_rows_move) {
  projection_node node(GetParam());
  std::uint64_t last = 0;
  for (int i = 0; i < 60; ++i) last = node.accepted("acme", "acc-" + std::to_string(i), open_account(i * 10));
  node.wait_for_position(last);
  std::atomic<bool> stop{false};
  std::thread mover([&] {
    httplib::Client c(node.url());
    for (int i = 0; i < 600 && !stop; ++i) {
      json dep = {{"aggregate_type", "Account"},
                  {"aggregate_id", "acc-" + std::to_string(i % 60)},
                  {"payload", deposit(1000)}};
      c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, dep.dump(), "application/json");
    }
  });
  std::set<std::string> seen;
  std::string cursor;
  std::int64_t previous = -1;
  for (int page = 0; page < 1000; ++page) {
    httplib::Params p{{"limit", "4"}, {"order_by", "balance"}};
    if (!cursor.empty()) p.emplace("cursor", cursor);
    auto a = node.query_ok("acme", "accounts", p);
    for (const auto& r : a["rows"]) {
      EXPECT_TRUE(seen.insert(r["key"].get<std::string>()).second) << "twice: " << r;
      const auto balance = r["row"]["balance"].get<std::int64_t>();
      EXPECT_GE(balance, previous) << "out of order";
      previous = balance;
    }
    if (a["next_cursor"].is_null()) break;
    cursor = a["next_cursor"].get<std::string>();
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  stop = true;
  mover.join();
  EXPECT_EQ(seen.size(), 60U);
}

INSTANTIATE_TEST_SUITE_P(backends, projection_query, ::testing::Values(backend::embedded, backend::jetstream),
                         backend_name);

class projection_requests : public ::testing::Test {
 protected:
  projection_node node{backend::embedded};
};

// Index entries carry their row (a covering index). An entry written
// without one (the layout before 0.2) is looked up instead: a store
// rewritten to the old layout answers the same, and the next change of a
// row writes its entries covering again.
TEST(projection_covering_index, entries_carry_their_row_and_old_entries_without_one_are_looked_up) {
  http_test::temp_dir dir;
  const auto data = (dir.path() / "data").string();
  const httplib::Params params{{"filter", "balance >= 40"}, {"limit", "7"}};
  json before;
  {
    projection_node node(backend::embedded, data);
    std::uint64_t last = 0;
    for (int i = 0; i < 30; ++i)
      last = node.accepted("acme", "acc-" + std::to_string(i), open_account(i * 3));
    node.wait_for_position(last);
    before = node.all_rows("acme", "accounts", params);
    ASSERT_EQ(before.size(), 16U) << before.dump();
  }
  {
    auto store = storage::node_store::open({data, storage::durability::relaxed, {}});
    ASSERT_TRUE(store.ok()) << store.err().to_string();
    auto& rm = store.value()->readmodels();
    auto ws = store.value()->begin();
    std::size_t entries = 0;
    for (const std::string field : {"balance", "open"}) {
      auto hits = rm.scan_index("acme", "accounts", field, {}, {}, {}, {}, 1000);
      ASSERT_TRUE(hits.ok()) << hits.err().to_string();
      for (const auto& h : hits.value()) {
        auto row = rm.get("acme", "accounts", h.row_key);
        ASSERT_TRUE(row.ok() && row.value());
        EXPECT_EQ(h.row, *row.value()) << "the entry of " << h.row_key << " on " << field << " is stale";
        rm.put_index(ws, "acme", "accounts", field, h.value, h.row_key, {});
        ++entries;
      }
    }
    EXPECT_EQ(entries, 60U);
    ASSERT_TRUE(store.value()->commit(ws).ok());
    ASSERT_TRUE(store.value()->close().ok());
  }
  projection_node node(backend::embedded, data);
  EXPECT_EQ(node.all_rows("acme", "accounts", params), before);
  const auto p = node.accepted("acme", "acc-1", deposit(100));
  node.wait_for_position(p);
  auto a = node.query_ok("acme", "accounts", {{"filter", "balance > 100"}});
  ASSERT_EQ(a["rows"].size(), 1U) << a.dump();
  EXPECT_EQ(a["rows"][0]["row"]["balance"], 103);
}

TEST_F(projection_requests, bad_requests_get_invalid_query_naming_what_is_wrong) {
  const auto last = node.accepted("acme", "acc-1", open_account(10));
  node.wait_for_position(last);
  auto expect = [&](const httplib::Params& p, const std::string& code, int status, const std::string& needle,
                    const std::string& view = "accounts", const std::string& tenant = "acme") {
    auto r = node.query(tenant, view, p);
    http_test::expect_rejection(r, status, code, needle);
    if (r) {
      EXPECT_NE(r->body.find(needle), std::string::npos) << r->body;
    }
  };
  expect({{"filter", "balance >"}}, "invalid_query", 400, "column 10");
  expect({{"filter", "balance > 5 and"}}, "invalid_query", 400, "column");
  expect({{"filter", "(balance > 5"}}, "invalid_query", 400, "column");
  expect({{"filter", "balance ~ 5"}}, "invalid_query", 400, "column 9");
  expect({{"filter", "name = \"open"}}, "invalid_query", 400, "column");
  expect({{"filter", std::string(5000, 'a') + " > 1"}}, "invalid_query", 400, "longer than 4096 bytes");
  expect({}, "invalid_query", 400, "unknown view 'nope'", "nope");
  expect({{"limit", "0"}}, "invalid_query", 400, "limit");
  expect({{"limit", "ten"}}, "invalid_query", 400, "limit");
  expect({{"cursor", "zzz"}}, "invalid_query", 400, "cursor");
  expect({{"cursor", "c1k0000000000000000ff"}}, "invalid_query", 400, "cursor");
  expect({{"order_by", "balance:sideways"}}, "invalid_query", 400, "order_by");
  expect({{"order_by", "1balance"}}, "invalid_query", 400, "order_by");
  expect({{"min_position", "-1"}}, "invalid_query", 400, "min_position");
  expect({{"wait_ms", "soon"}}, "invalid_query", 400, "wait_ms");
  expect({}, "invalid_tenant", 400, "x-tenant-id", "accounts", "");
  expect({}, "invalid_tenant", 400, "tenant", "accounts", "bad.tenant");
  // A position the log has not reached: 503 unavailable (retryable) after wait_ms.
  expect({{"min_position", "999999"}, {"wait_ms", "50"}}, "unavailable", 503, "min_position");
  // A huge limit is clamped, not refused.
  auto a = node.query_ok("acme", "accounts", {{"limit", "1000000"}});
  EXPECT_EQ(a["rows"].size(), 1U);
  // Nothing accepted was lost on the way.
  EXPECT_EQ(node.all_rows("acme", "accounts", {}).size(), 1U);
}

TEST_F(projection_requests, admin_views_reports_position_lag_rows_and_state) {
  node.accepted("acme", "acc-1", open_account(10));
  const auto last = node.accepted("acme", "acc-2", open_account(20));
  node.wait_for_position(last);
  auto r = node.client().Get("/admin/views");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  auto views = json::parse(r->body);
  ASSERT_EQ(views.size(), 2U) << views;
  for (const auto& v : views) {
    EXPECT_EQ(v["position"], last) << v;
    EXPECT_EQ(v["lag"], 0) << v;
    EXPECT_EQ(v["rows"], 2) << v;
    EXPECT_EQ(v["state"], "live") << v;
  }
  // The metrics export the same figures.
  auto m = node.client().Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("esflow_projection_events_total{view=\"accounts\"} 2"), std::string::npos);
  EXPECT_NE(m->body.find("esflow_projection_query_duration_seconds_count{view=\"accounts\"}"),
            std::string::npos);
}

TEST_F(projection_requests, a_closed_account_leaves_the_program_view_and_a_reopen_brings_it_back) {
  node.accepted("acme", "acc-1", open_account(0));
  auto last = node.accepted("acme", "acc-1", close_account());
  node.wait_for_position(last);
  EXPECT_EQ(node.all_rows("acme", "account_activity", {}).size(), 0U);
  auto acc = node.all_rows("acme", "accounts", {});
  ASSERT_EQ(acc.size(), 1U);
  EXPECT_EQ(acc[0]["row"]["open"], false);
  last = node.accepted("acme", "acc-1", open_account(5));
  node.wait_for_position(last);
  auto act = node.all_rows("acme", "account_activity", {});
  ASSERT_EQ(act.size(), 1U);
  EXPECT_EQ(act[0]["version"], 3);
}

}  // namespace
}  // namespace esflow::projection_test
