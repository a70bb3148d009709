// Rebuilding a view (docs/projection.md "Rebuilding a view"): the new
// generation is folded from the start of the log beside the live one, which
// keeps answering queries; once caught up it becomes live, every row equals
// the fold of its events, and the old generation's keys are erased. A
// rebuild survives a restart; `esflow views` drives it.
#include "cli/views.h"
#include "storage/node_store.h"
#include "tests/stages/projection/projection_node.h"

#include <sstream>

namespace esflow::projection_test {
namespace {

json views_of(projection_node& node) {
  auto r = node.client().Get("/admin/views");
  return r && r->status == 200 ? json::parse(r->body) : json();
}

json view_state(projection_node& node, const std::string& name) {
  for (const auto& v : views_of(node))
    if (v["view"] == name) return v;
  return nullptr;
}

// Waits (bounded) until the view is live in `generation`.
bool live_in(projection_node& node, const std::string& name, int generation) {
  for (int i = 0; i < 500; ++i) {
    auto v = view_state(node, name);
    if (v.is_object() && v["state"] == "live" && v["generation"] == generation) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void expect_rows_equal_the_aggregates(projection_node& node, std::size_t accounts) {
  auto rows = node.all_rows("acme", "accounts", {{"limit", "50"}});
  ASSERT_EQ(rows.size(), accounts);
  for (const auto& r : rows) {
    const auto id = r["key"].get<std::string>();
    auto st =
        http_test::json_of(node.client().Get("/v1/aggregates/Account/" + id, {{"x-tenant-id", "acme"}}));
    EXPECT_EQ(r["row"], st["state"]) << id;
    EXPECT_EQ(r["version"], st["version"]) << id;
  }
}

class projection_rebuild : public ::testing::TestWithParam<backend> {};

TEST_P(projection_rebuild, queries_answer_from_the_old_rows_until_the_new_generation_is_caught_up) {
  projection_node node(GetParam());
  std::uint64_t last = 0;
  for (int i = 0; i < 120; ++i)
    last = node.accepted("acme", "acc-" + std::to_string(i % 40), i < 40 ? open_account(i) : deposit(1));
  node.wait_for_position(last);
  auto r = node.client().Post("/admin/views/accounts/rebuild", R"({"confirm":true})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto started = json::parse(r->body);
  EXPECT_EQ(started["view"], "accounts");
  // Rebuilding (or, on a fast machine, already done).
  if (started["state"] == "rebuilding") {
    EXPECT_EQ(started["rebuild"]["generation"], 1) << started;
  } else {
    EXPECT_EQ(started["generation"], 1) << started;
  }
  // Meanwhile: queries see every row, and what the views held they still report.
  auto during =
      node.query_ok("acme", "accounts", {{"limit", "1000"}, {"min_position", std::to_string(last)}});
  EXPECT_EQ(during["rows"].size(), 40U);
  EXPECT_GE(during["position"].get<std::uint64_t>(), last);
  // Writes go on during the rebuild.
  for (int i = 0; i < 40; ++i) last = node.accepted("acme", "acc-" + std::to_string(i), deposit(2));
  ASSERT_TRUE(live_in(node, "accounts", 1)) << views_of(node);
  node.wait_for_position(last);
  expect_rows_equal_the_aggregates(node, 40);
  auto v = view_state(node, "accounts");
  EXPECT_EQ(v["rows"], 40);
  // The other view was not rebuilt and is whole too.
  EXPECT_EQ(view_state(node, "account_activity")["generation"], 0);
  EXPECT_EQ(node.all_rows("acme", "account_activity", {}).size(), 40U);
  // A second rebuild goes to generation 2 once the first's rows are erased.
  bool started_again = false;
  for (int i = 0; i < 200 && !started_again; ++i) {
    auto again =
        node.client().Post("/admin/views/accounts/rebuild", R"({"confirm":true})", "application/json");
    started_again = again && again->status == 202;
    if (!started_again) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(started_again);
  ASSERT_TRUE(live_in(node, "accounts", 2)) << views_of(node);
  expect_rows_equal_the_aggregates(node, 40);
}

INSTANTIATE_TEST_SUITE_P(backends, projection_rebuild,
                         ::testing::Values(backend::embedded, backend::jetstream), [](const auto& i) {
                           return i.param == backend::embedded ? "embedded" : "jetstream";
                         });

TEST(projection_rebuild_ops, a_rebuild_survives_a_restart_and_the_old_generation_is_erased) {
  http_test::temp_dir dir;
  const auto data = (dir.path() / "data").string();
  {
    projection_node node(backend::embedded, data);
    std::uint64_t last = 0;
    for (int i = 0; i < 30; ++i) last = node.accepted("acme", "acc-" + std::to_string(i), open_account(i));
    node.wait_for_position(last);
    auto r = node.client().Post("/admin/views/accounts/rebuild", R"({"confirm":true})", "application/json");
    ASSERT_TRUE(r && r->status == 202);
    // Stopped at once: the rebuild is recorded and goes on after the restart.
  }
  {
    projection_node node(backend::embedded, data);
    ASSERT_TRUE(live_in(node, "accounts", 1)) << views_of(node);
    expect_rows_equal_the_aggregates(node, 30);
    // Let the old generation's erasure finish (bounded), then look into the store.
    for (int i = 0; i < 100; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto store = storage::node_store::open({data, storage::durability::relaxed, {}});
  ASSERT_TRUE(store.ok()) << store.err().to_string();
  std::size_t old_rows = 0, new_rows = 0;
  ASSERT_TRUE(store.value()
                  ->readmodels()
                  .for_each_row("accounts", [&](auto, auto, auto) { return ++old_rows, true; })
                  .ok());
  ASSERT_TRUE(store.value()
                  ->readmodels()
                  .for_each_row("accounts@1", [&](auto, auto, auto) { return ++new_rows, true; })
                  .ok());
  EXPECT_EQ(old_rows, 0U);
  EXPECT_EQ(new_rows, 30U);
}

TEST(projection_rebuild_ops, refused_without_confirm_or_for_an_unknown_view_and_driven_by_the_cli) {
  projection_node node(backend::embedded);
  const auto last = node.accepted("acme", "acc-1", open_account(3));
  node.wait_for_position(last);
  auto r = node.client().Post("/admin/views/accounts/rebuild", "{}", "application/json");
  http_test::expect_rejection(r, 400, "invalid_command", "no confirm");
  r = node.client().Post("/admin/views/accounts/rebuild", "not json", "application/json");
  http_test::expect_rejection(r, 400, "invalid_command", "not json");
  r = node.client().Post("/admin/views/nope/rebuild", R"({"confirm":true})", "application/json");
  http_test::expect_rejection(r, 400, "invalid_query", "unknown view");
  EXPECT_EQ(view_state(node, "accounts")["generation"], 0) << "nothing started";

  std::ostringstream out, err;
  EXPECT_EQ(cli::views_rebuild_command(node.url(), "accounts", false, out, err), cli::k_usage);
  EXPECT_NE(err.str().find("--confirm"), std::string::npos) << err.str();
  EXPECT_EQ(cli::views_rebuild_command(node.url(), "accounts", true, out, err), cli::k_ok) << err.str();
  ASSERT_TRUE(live_in(node, "accounts", 1));
  out.str("");
  EXPECT_EQ(cli::views_list_command(node.url(), out, err), cli::k_ok) << err.str();
  EXPECT_NE(out.str().find("accounts"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("account_activity"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("live"), std::string::npos) << out.str();
  EXPECT_EQ(cli::views_list_command("127.0.0.1:1", out, err), cli::k_failure);
}

}  // namespace
}  // namespace esflow::projection_test
