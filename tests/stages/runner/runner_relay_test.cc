// The relay hands out what memory holds, without waiting for a pass over the
// outbox (docs/runner.md "The relay"): with `poll: 1h` no safety pass runs
// during a test, so each item below reaches the stream only through the
// paths under test —
//   - a backlog a restart left (found by the first pass) that is larger than
//     the per-tenant limit drains as dispatches end, for every tenant;
//   - a failed dispatch is handed out again when its backoff ends.
#include "tests/stages/runner/runner_harness.h"

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

// The relay of runner-saga.yaml alone, with a small per-tenant limit, small
// pages and no periodic pass.
std::string relay_pipeline(const std::filesystem::path& dir) {
  const auto p = dir / "relay.yaml";
  write_file(p, R"(pipeline: runner
settings:
  http: 127.0.0.1:0
  data_dir: ./data
  durability: fsync
  event_log: embedded
  tenancy: multi
sagas:
  Transfer:
    program: )" + std::string(ESFLOW_SOURCE_DIR) +
                    R"(/pipelines/programs/transfer_saga.lua
    triggers:
      - { aggregate_type: Transfer, events: [transfer_requested] }
    correlate_by: aggregate_id
stages:
  scan:     { kind: outbox.scan, per_tenant: 2, batch: 8, poll: 1h }
  dispatch: { kind: outbox.dispatch }
  confirm:  { kind: outbox.confirm }
flow:
  - scan -> dispatch -> confirm
  - "dispatch.error -> confirm"
)");
  return p.string();
}

json effect_item(const std::string& tenant, const std::string& id) {
  return {{"kind", "effect"}, {"tenant_id", tenant}, {"saga", "Transfer"},    {"correlation_id", id},
          {"command_id", id}, {"effect", "notify"},  {"payload", {{"n", 1}}}, {"created_ms", 1}};
}

class runner_relay : public ::testing::Test {
 protected:
  http_test::temp_dir dir;
  std::string data() const { return (dir.path() / "data").string(); }
};

TEST_F(runner_relay, a_backlog_over_the_per_tenant_limit_drains_without_waiting_for_a_pass) {
  constexpr int k_per_tenant = 30;
  const std::vector<std::string> tenants = {"acme", "beta"};
  std::set<std::string> ids;
  {
    auto store = shared_store(data());
    ASSERT_TRUE(store);
    auto ws = store->begin();
    for (const auto& t : tenants)
      for (int i = 0; i < k_per_tenant; ++i) {
        const auto id = t + "-w" + std::to_string(i);
        store->outbox().put(ws, t, "effect", id, effect_item(t, id).dump());
        ids.insert(id);
      }
    ASSERT_TRUE(store->commit(ws).ok());
  }
  {
    files_node node(data(), {relay_pipeline(dir.path())});
    ASSERT_TRUE(node.ok());
    auto store = shared_store(data());
    ASSERT_TRUE(store);
    // The first pass sees all 60; 2 per tenant may be in flight: the rest are handed out as slots free.
    EXPECT_TRUE(eventually([&] { return outbox(*store).empty(); }, 20s))
        << outbox(*store).size() << " of " << ids.size() << " items left";
    // The depth gauge is what that one pass met, page after page (8 items each): each item once.
    auto r = node.client().Get("/metrics");
    ASSERT_TRUE(r && r->status == 200);
    EXPECT_EQ(metric(r->body, "esflow_runner_outbox_depth", R"(pipeline="runner")"), 60.0);
  }
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  std::map<std::string, int> published;
  for (const auto& m : stream_messages(*store, "WORKFLOW_COMMANDS"))
    ++published[json::parse(m.body).value("command_id", "")];
  EXPECT_EQ(published.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(published[id], 1) << id;
}

TEST_F(runner_relay, a_failed_dispatch_is_handed_out_again_when_its_backoff_ends) {
  {
    auto store = shared_store(data());
    ASSERT_TRUE(store);
    // A command item; this process runs no aggregate pipeline, so each dispatch fails (unavailable).
    json item = {{"kind", "command"},       {"tenant_id", "acme"},
                 {"saga", "Transfer"},      {"correlation_id", "t-1"},
                 {"command_id", "c-1"},     {"aggregate_type", "Account"},
                 {"aggregate_id", "acc-a"}, {"payload", {{"type", "withdraw"}, {"amount", 1}}}};
    auto ws = store->begin();
    store->outbox().put(ws, "acme", "command", "c-1", item.dump());
    ASSERT_TRUE(store->commit(ws).ok());
  }
  files_node node(data(), {relay_pipeline(dir.path())});
  ASSERT_TRUE(node.ok());
  auto retried = [&] {
    auto r = node.client().Get("/metrics");
    return r && r->status == 200
               ? metric(r->body, "esflow_runner_outbox_dispatched_total", R"(outcome="retried")")
               : -1.0;
  };
  // Backoffs of about 100, 200 and 400 ms: a fourth failure within seconds, none of them from a pass.
  EXPECT_TRUE(eventually([&] { return retried() >= 4; }, 20s)) << retried();
  auto store = shared_store(data());
  ASSERT_TRUE(store);
  ASSERT_EQ(outbox(*store).size(), 1U) << "never deleted before a confirmation";
}

}  // namespace
}  // namespace esflow::runner_test
