// The money-transfer example end to end on both backends (the shipped
// aggregate and runner-saga pipelines in one process, as `esflow dev` and
// `esflow dev --nats` run them; on JetStream against a real nats-server):
// the happy path, a rejected withdraw, a rejected deposit that is
// compensated, and a transfer stuck until its timeout. Balances are
// conserved in every case, and tenants stay apart.
#include "tests/stages/runner/runner_node.h"

namespace esflow::runner_test {
namespace {

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
