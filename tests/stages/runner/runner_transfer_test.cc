// The money-transfer example end to end on both backends (the shipped
// aggregate and runner-saga pipelines in one process, as `esflow dev` and
// `esflow dev --nats` run them; on JetStream against a real nats-server):
// the happy path, a rejected withdraw, a rejected deposit that is
// compensated, and a transfer stuck until its timeout. Balances are
// conserved in every case, and tenants stay apart.
#include "tests/stages/runner/runner_harness.h"
#include "tests/stages/runner/runner_node.h"

#include <pthread.h>
#include <string_view>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

class runner_transfer : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    if (GetParam() == backend::jetstream) {
      _nats = std::make_unique<nats::testing::nats_server_fixture>();
      ASSERT_TRUE(_nats->start()) << "nats-server did not start";
    }
  }
  http_test::temp_dir dir;
  std::string data() const { return (dir.path() / "data").string(); }
  std::string url() const { return _nats ? _nats->url() : std::string(); }

 private:
  std::unique_ptr<nats::testing::nats_server_fixture> _nats;
};

TEST_P(runner_transfer, a_transfer_moves_the_money_and_completes) {
  runner_node node(data(), true, true, url());
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node.command("acme", "Account", "acc-a", open_account(100))["status"], "accepted");
  EXPECT_EQ(node.command("acme", "Account", "acc-b", open_account(0))["status"], "accepted");
  auto r = node.command("acme", "Transfer", "t-1", request_transfer("acc-a", "acc-b", 30));
  ASSERT_EQ(r["status"], "accepted") << r.dump();
  ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t-1") == "completed"; }))
      << node.saga("acme", "t-1").dump();
  EXPECT_EQ(node.balance("acme", "acc-a"), 70);
  EXPECT_EQ(node.balance("acme", "acc-b"), 30);
  auto saga = node.saga("acme", "t-1");
  EXPECT_EQ(saga["done"], true) << saga.dump();
  EXPECT_EQ(saga["state"]["step"], "completed");
  EXPECT_EQ(saga["schedules"], json::array()) << "the timeout was cancelled";
  ASSERT_TRUE(node.eventually([&] { return node.saga("acme", "t-1")["pending_work"].empty(); }))
      << "the outbox drains";
  // Another tenant sees no instance of this one.
  int status = 0;
  node.saga("other", "t-1", &status);
  EXPECT_EQ(status, 404);
}

TEST_P(runner_transfer, a_rejected_withdraw_fails_the_transfer_and_moves_nothing) {
  runner_node node(data(), true, true, url());
  ASSERT_TRUE(node.ok());
  node.command("acme", "Account", "acc-a", open_account(10));
  node.command("acme", "Account", "acc-b", open_account(0));
  ASSERT_EQ(node.command("acme", "Transfer", "t-2", request_transfer("acc-a", "acc-b", 50))["status"],
            "accepted");
  ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t-2") == "failed"; }));
  EXPECT_EQ(node.state("acme", "Transfer", "t-2")["reason"], "withdraw rejected: insufficient_funds");
  EXPECT_EQ(node.balance("acme", "acc-a"), 10);
  EXPECT_EQ(node.balance("acme", "acc-b"), 0);
}

TEST_P(runner_transfer, a_rejected_deposit_is_compensated_and_the_transfer_fails) {
  runner_node node(data(), true, true, url());
  ASSERT_TRUE(node.ok());
  node.command("acme", "Account", "acc-a", open_account(100));
  // acc-closed was never opened: its deposit is rejected (account_not_open).
  ASSERT_EQ(node.command("acme", "Transfer", "t-3", request_transfer("acc-a", "acc-closed", 40))["status"],
            "accepted");
  ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t-3") == "failed"; }));
  ASSERT_TRUE(node.eventually([&] { return node.balance("acme", "acc-a") == 100; }))
      << "the withdrawn 40 came back: " << node.balance("acme", "acc-a");
  EXPECT_EQ(node.state("acme", "Transfer", "t-3")["reason"], "deposit rejected: account_not_open");
}

TEST_P(runner_transfer, a_transfer_stuck_past_its_timeout_fails_and_a_late_withdraw_is_returned) {
  {
    runner_node aggregate_only(data(), true, false, url());
    ASSERT_TRUE(aggregate_only.ok());
    aggregate_only.command("acme", "Account", "acc-a", open_account(100));
    aggregate_only.command("acme", "Account", "acc-b", open_account(0));
    auto req = request_transfer("acc-a", "acc-b", 25);
    req["timeout_ms"] = 200;
    ASSERT_EQ(aggregate_only.command("acme", "Transfer", "t-4", req)["status"], "accepted");
  }
  {
    // No aggregate node: the withdraw waits in the outbox; the timeout fires.
    runner_node runner_only(data(), false, true, url());
    ASSERT_TRUE(runner_only.ok());
    ASSERT_TRUE(runner_only.eventually([&] {
      return runner_only.saga("acme", "t-4")["state"]["step"] == "timed_out";
    })) << runner_only.saga("acme", "t-4").dump();
    EXPECT_EQ(runner_only.saga("acme", "t-4")["pending_work"].size(), 2U) << "withdraw and fail wait";
  }
  runner_node both(data(), true, true, url());
  ASSERT_TRUE(both.ok());
  ASSERT_TRUE(both.eventually([&] { return both.transfer_status("acme", "t-4") == "failed"; }));
  ASSERT_TRUE(both.eventually([&] { return both.saga("acme", "t-4")["done"] == true; }))
      << both.saga("acme", "t-4").dump() << " balance " << both.balance("acme", "acc-a");
  ASSERT_TRUE(both.eventually([&] { return both.balance("acme", "acc-a") == 100; }))
      << "the late withdraw was deposited back: " << both.balance("acme", "acc-a");
  EXPECT_EQ(both.balance("acme", "acc-b"), 0);
  EXPECT_EQ(both.state("acme", "Transfer", "t-4")["reason"], "timed out");
}

INSTANTIATE_TEST_SUITE_P(backends, runner_transfer, ::testing::Values(backend::embedded, backend::jetstream),
                         backend_name);

// A JetStream input that is never processed (every saga commit of the runner
// fails: its store refuses the writes) is nak'ed until max_deliver and then
// quarantined by its consumer, the server's message terminated. Retried from
// the quarantine (POST /admin/quarantine/<id>/retry), the consumer takes the
// record in again and the transfer completes; the consumer's metrics count
// the redeliveries and the retries. A retry that fails again puts the record
// back with one attempt more.
TEST(runner_over_nats, an_input_quarantined_after_max_deliver_is_retried_from_the_quarantine) {
  nats::testing::nats_server_fixture nats_server;
  ASSERT_TRUE(nats_server.start()) << "nats-server did not start";
  http_test::temp_dir agg_dir, runner_dir;
  const auto runner_data = (runner_dir.path() / "data").string();
  std::atomic<int> refused{0}, refuse_again{0};
  // The runner's first 5 saga commits fail (its commit thread's writes: the 5 deliveries); then
  // they go through, except `refuse_again` more.
  auto store = shared_store(runner_data, [&] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (std::string_view(name) != "esflow-commitp") return false;
    if (refuse_again.load() > 0) return refuse_again.fetch_sub(1) > 0;
    return refused.fetch_add(1) < 5;
  });
  ASSERT_TRUE(store);
  runner_node aggregate((agg_dir.path() / "data").string(), true, false, nats_server.url());
  runner_node runner(runner_data, false, true, nats_server.url());
  ASSERT_TRUE(aggregate.ok() && runner.ok());
  aggregate.command("acme", "Account", "acc-a", open_account(50));
  aggregate.command("acme", "Account", "acc-b", open_account(5));
  ASSERT_EQ(aggregate.command("acme", "Transfer", "t-q", request_transfer("acc-a", "acc-b", 20))["status"],
            "accepted");
  // Quarantined: the fifth delivery's nak writes the record and terminates the message.
  std::string id;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = runner.client().Get("/admin/quarantine");
        if (!r || r->status != 200) return false;
        const auto items = json::parse(r->body)["items"];
        if (items.size() != 1) return false;
        id = items[0].value("id", "");
        return items[0].value("source", "") == "esflow-runner-transfers";
      },
      20s))
      << "no quarantine record";
  EXPECT_GE(refused.load(), 5);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(aggregate.transfer_status("acme", "t-q"), "requested") << "no saga ran";
  EXPECT_EQ(aggregate.balance("acme", "acc-a"), 50);

  // A retry whose commit fails again: the record comes back, one attempt more.
  refuse_again = 1;
  auto failed = runner.client().Post("/admin/quarantine/" + id + "/retry", "", "application/json");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 202) << failed->body;
  json back;
  ASSERT_TRUE(eventually(
      [&] {
        auto r = runner.client().Get("/admin/quarantine/" + id);
        if (!r || r->status != 200) return false;
        back = json::parse(r->body);
        return back.value("attempts", 0) == 6;
      },
      10s))
      << back.dump();
  EXPECT_NE(back.value("reason", "").find("retried from the quarantine"), std::string::npos) << back.dump();
  EXPECT_EQ(aggregate.transfer_status("acme", "t-q"), "requested");

  auto retried = runner.client().Post("/admin/quarantine/" + id + "/retry", "", "application/json");
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 202) << retried->body;
  ASSERT_TRUE(aggregate.eventually([&] { return aggregate.transfer_status("acme", "t-q") == "completed"; }))
      << runner.saga("acme", "t-q").dump();
  EXPECT_EQ(aggregate.balance("acme", "acc-a"), 30);
  EXPECT_EQ(aggregate.balance("acme", "acc-b"), 25);
  auto left = runner.client().Get("/admin/quarantine");
  ASSERT_TRUE(left);
  EXPECT_TRUE(json::parse(left->body)["items"].empty()) << left->body;
  // A second retry of the same id: gone.
  auto again = runner.client().Post("/admin/quarantine/" + id + "/retry", "", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);

  auto metrics = runner.client().Get("/metrics");
  ASSERT_TRUE(metrics);
  const auto value = [&](const std::string& outcome) {
    const auto key =
        "esflow_jetstream_consumer_messages_total{consumer=\"esflow-runner-transfers\",outcome=\"" + outcome +
        "\"} ";
    const auto at = metrics->body.find(key);
    return at == std::string::npos ? -1.0 : std::stod(metrics->body.substr(at + key.size()));
  };
  EXPECT_EQ(value("retried"), 2) << metrics->body;
  EXPECT_GE(value("redelivered"), 4);
  EXPECT_GE(value("naked"), 4);
  EXPECT_EQ(value("quarantined"), 1);
}

}  // namespace
}  // namespace esflow::runner_test

namespace esflow::runner_test {
namespace {

// A runner on its own node (its own data directory, no aggregate pipeline)
// reaches the aggregate node over NATS request/reply, reads the aggregate's
// commits from AGGREGATE_EVENTS through its durable consumer, and the
// transfer completes.
TEST(runner_over_nats, a_runner_on_another_node_sends_its_commands_by_request_reply) {
  nats::testing::nats_server_fixture nats_server;
  ASSERT_TRUE(nats_server.start()) << "nats-server did not start";
  http_test::temp_dir a, r;
  runner_node aggregate((a.path() / "data").string(), true, false, nats_server.url());
  runner_node runner((r.path() / "data").string(), false, true, nats_server.url());
  ASSERT_TRUE(aggregate.ok() && runner.ok());
  aggregate.command("acme", "Account", "acc-a", open_account(50));
  aggregate.command("acme", "Account", "acc-b", open_account(5));
  ASSERT_EQ(aggregate.command("acme", "Transfer", "t-9", request_transfer("acc-a", "acc-b", 20))["status"],
            "accepted");
  ASSERT_TRUE(aggregate.eventually([&] { return aggregate.transfer_status("acme", "t-9") == "completed"; }))
      << runner.saga("acme", "t-9").dump();
  EXPECT_EQ(aggregate.balance("acme", "acc-a"), 30);
  EXPECT_EQ(aggregate.balance("acme", "acc-b"), 25);
  EXPECT_EQ(runner.saga("acme", "t-9")["done"], true);
  int status = 0;
  aggregate.saga("acme", "t-9", &status);
  EXPECT_EQ(status, 404) << "the aggregate node runs no saga: the instance lives on the runner's node";
}

}  // namespace
}  // namespace esflow::runner_test
