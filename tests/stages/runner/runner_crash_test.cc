// The runner survives real crashes: a child `esflow run` (aggregate.yaml +
// runner-saga.yaml as shipped + a runner-effect pipeline whose `notify`
// POSTs to a receiver of this test) on one data directory is SIGKILLed at
// random moments while transfers stream in, several times, then started
// again. In the end every transfer is completed or failed, the money is
// conserved (the sum over the accounts), no command id is appended to the
// log twice, and the receiver saw one Idempotency-Key per completed
// transfer (raw attempts, retries after a crash included, are printed).
// The first rounds end at precise boundaries (stages/runner/crash_point.h):
// after a saga commit before its ack and dispatch, after a dispatch before
// the outbox delete, after an effect ran before its result is published.
#include "tests/stages/runner/child_node.h"

#include <random>
#include <set>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

struct client {
  explicit client(int port) : http("127.0.0.1", port) {
    http.set_connection_timeout(1, 0);
    http.set_read_timeout(5, 0);
  }
  httplib::Result command(const std::string& type, const std::string& id, const json& payload) {
    json body = {{"aggregate_type", type}, {"aggregate_id", id}, {"payload", payload}};
    return http.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body.dump(), "application/json");
  }
  json state(const std::string& type, const std::string& id) {
    auto r = http.Get("/v1/aggregates/" + type + "/" + id, {{"x-tenant-id", "acme"}});
    return r && r->status == 200 ? http_test::json_of(r)["state"] : json();
  }
  httplib::Client http;
};

constexpr int k_accounts = 20;
constexpr std::int64_t k_initial = 100;
constexpr int k_transfers = 60;

// Per transfer: the aggregate's status and the saga's step and pending work (why money went missing).
std::string diagnosis(client& c) {
  std::string out;
  for (int i = 0; i < k_transfers; ++i) {
    const auto id = "t-" + std::to_string(i);
    auto t = c.state("Transfer", id);
    auto r = c.http.Get("/v1/sagas/Transfer/" + id, {{"x-tenant-id", "acme"}});
    auto sg = r && r->status == 200 ? http_test::json_of(r) : json();
    out += id + " " + t.dump() + " saga=" + (sg.is_object() ? sg["state"].dump() : "none") +
           " pending=" + (sg.is_object() ? std::to_string(sg["pending_work"].size()) : "-") + "\n";
  }
  // Expected balances from the transfers' outcomes against the accounts', with the events of those that
  // differ.
  std::map<std::string, std::int64_t> expected;
  for (int i = 0; i < k_accounts; ++i) expected["acc-" + std::to_string(i)] = k_initial;
  for (int i = 0; i < k_transfers; ++i) {
    auto t = c.state("Transfer", "t-" + std::to_string(i));
    if (!t.is_object() || t.value("status", "") != "completed") continue;
    expected[t.value("from", "")] -= t.value("amount", std::int64_t{0});
    expected[t.value("to", "")] += t.value("amount", std::int64_t{0});
  }
  for (const auto& [id, want] : expected) {
    auto s = c.state("Account", id);
    const auto got = s.is_object() ? s.value("balance", std::int64_t{0}) : 0;
    if (got == want) continue;
    auto ev = c.http.Get("/v1/aggregates/Account/" + id + "/events?limit=1000", {{"x-tenant-id", "acme"}});
    out += id + " expected " + std::to_string(want) + " has " + std::to_string(got) + ": " +
           (ev ? ev->body : std::string()) + "\n";
  }
  return out;
}

std::string account(int i) { return "acc-" + std::to_string(i); }
std::string transfer_id(int i) { return "t-" + std::to_string(i); }

TEST(runner_crash, sigkill_at_random_moments_then_every_transfer_ends_and_money_is_conserved) {
  http_test::temp_dir dir;
  const auto data_dir = (dir.path() / "data").string();
  hook_receiver hook(runner_hooks::answer(200));
  const std::vector<std::string> files = {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml"),
                                          effect_pipeline(dir.path(), hook.url())};
  std::mt19937_64 rng(20261205);
  const auto requests = random_transfers(rng, k_transfers, k_accounts, 120);
  std::set<int> opened, requested;
  // Sends what is not known to be stored yet; stops at the first unanswered request (killed).
  auto drive = [&](client& c, const std::atomic<bool>& stop, std::mutex& mu) {
    for (int i = 0; i < k_accounts && !stop; ++i) {
      {
        std::lock_guard lock(mu);
        if (opened.count(i)) continue;
      }
      auto r = c.command("Account", account(i), open_account(k_initial));
      if (!r) return;
      const auto j = http_test::json_of(r);
      if (j.value("status", "") != "accepted" && j.value("code", "") != "account_already_open") continue;
      std::lock_guard lock(mu);
      opened.insert(i);
    }
    for (int i = 0; i < k_transfers && !stop; ++i) {
      {
        std::lock_guard lock(mu);
        if (requested.count(i)) continue;
      }
      auto r = c.command("Transfer", transfer_id(i), requests[static_cast<std::size_t>(i)]);
      if (!r) return;
      const auto j = http_test::json_of(r);
      // Anything else (unavailable while starting or stopping) is sent again later.
      if (j.value("status", "") != "accepted" && j.value("code", "") != "transfer_already_requested")
        continue;
      std::lock_guard lock(mu);
      requested.insert(i);
      if (i % 7 == 0) std::this_thread::sleep_for(5ms);  // spread the stream over the kill window
    }
  };
  // Rounds ended at a boundary by the child itself (ESFLOW_TEST_CRASH_AT, the
  // n-th time the point is reached), then rounds SIGKILLed at random moments.
  const std::vector<std::string> points = {"saga.committed:" + std::to_string(20 + rng() % 40),
                                           "outbox.dispatched:" + std::to_string(5 + rng() % 25),
                                           "effect.executed:" + std::to_string(1 + rng() % 4),
                                           "saga.committed:" + std::to_string(5 + rng() % 20),
                                           "",
                                           ""};
  std::map<std::string, int> hit;
  for (std::size_t round = 0; round < points.size(); ++round) {
    child_node child(data_dir, files, points[round]);
    // A crash point can be reached before the child answers /ready (re-read inputs at start).
    ASSERT_TRUE(child.ready(20s) || (!points[round].empty() && child.wait_exit(0ms) == 137))
        << "round " << round << ":\n"
        << log_tail(data_dir);
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::thread traffic([&] {
      client c(child.port());
      drive(c, stop, mu);
    });
    if (!points[round].empty()) {
      const int code = child.wait_exit(10s);
      const auto point = points[round].substr(0, points[round].find(':'));
      hit[point] += code == 137 ? 1 : 0;
      std::cout << "[ crash ] round " << round << ": " << points[round] << " -> exit " << code << "\n";
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + static_cast<int>(rng() % 450)));
      child.kill();  // anywhere: saga commits, dispatches, outbox deletes, effects, reminders
    }
    stop = true;
    traffic.join();
  }
  EXPECT_GE(hit["saga.committed"], 1);
  EXPECT_GE(hit["outbox.dispatched"], 1);
  EXPECT_GE(hit["effect.executed"], 1);
  child_node child(data_dir, files);
  ASSERT_TRUE(child.ready(20s)) << log_tail(data_dir);
  client c(child.port());
  for (int i = 0;
       i < 20 && (opened.size() < std::size_t{k_accounts} || requested.size() < std::size_t{k_transfers});
       ++i) {
    std::atomic<bool> stop{false};
    std::mutex mu;
    drive(c, stop, mu);
  }
  ASSERT_EQ(opened.size(), static_cast<std::size_t>(k_accounts));
  ASSERT_EQ(requested.size(), static_cast<std::size_t>(k_transfers));
  int completed = 0, failed = 0;
  ASSERT_TRUE(eventually(
      [&] {
        completed = failed = 0;
        for (int i = 0; i < k_transfers; ++i) {
          const auto s = c.state("Transfer", transfer_id(i));
          const auto st = s.is_object() ? s.value("status", "") : "";
          completed += st == "completed" ? 1 : 0;
          failed += st == "failed" ? 1 : 0;
        }
        return completed + failed == k_transfers;
      },
      40s))
      << completed << " completed, " << failed << " failed of " << k_transfers;
  std::int64_t sum = 0;
  ASSERT_TRUE(eventually(
      [&] {
        sum = 0;
        for (int i = 0; i < k_accounts; ++i) {
          const auto s = c.state("Account", account(i));
          sum += s.is_object() ? s.value("balance", std::int64_t{0}) : 0;
        }
        return sum == k_initial * k_accounts;
      },
      20s))
      << "money conserved: " << sum << "\n"
      << diagnosis(c);
  ASSERT_TRUE(eventually([&] { return static_cast<int>(calls_per_key(hook).size()) == completed; }, 20s))
      << calls_per_key(hook).size() << " effect keys for " << completed << " completed transfers";
  std::this_thread::sleep_for(300ms);
  child.kill();
  const auto keys = calls_per_key(hook);
  EXPECT_EQ(static_cast<int>(keys.size()), completed) << "one notify per completed transfer";
  std::cout << "[ crash ] " << completed << " completed, " << failed << " failed; notify: " << keys.size()
            << " keys, " << hook.calls() << " raw attempts\n";
  EXPECT_GT(completed, 0);
  EXPECT_GT(failed, 0);
  auto store = storage::node_store::open({.data_dir = data_dir, .mode = storage::durability::fsync});
  ASSERT_TRUE(store.ok()) << store.err().to_string();
  for (const auto& [id, n] : commits_per_command(*store.value())) EXPECT_EQ(n, 1) << "command " << id;
  EXPECT_TRUE(outbox(*store.value()).empty());
  // Every completed transfer's saga asked for exactly one notify (one effect command id).
  std::set<std::string> effect_ids;
  for (const auto& m : stream_messages(*store.value(), "WORKFLOW_COMMANDS"))
    effect_ids.insert(json::parse(m.body).value("command_id", ""));
  EXPECT_EQ(static_cast<int>(effect_ids.size()), completed);
  for (const auto& [k, n] : keys) EXPECT_TRUE(effect_ids.count(k)) << k;
}

// A command was rejected and the rejection stored in its outbox item, the
// process killed before the publish (on JetStream the same holds between the
// publish and the item's delete): after the restart the same command, sent
// again, could be accepted (the aggregate stores nothing for a rejection)
// while a saga might already act on the rejection — money withdrawn by a
// failed transfer. The stored answer is published instead, never the command.
TEST(runner_crash, a_rejection_stored_before_a_crash_is_not_turned_into_an_acceptance) {
  http_test::temp_dir dir;
  const auto data_dir = (dir.path() / "data").string();
  const std::vector<std::string> runner = {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml")};
  {
    child_node child(data_dir, runner, "outbox.answered:1");
    ASSERT_TRUE(child.ready(20s)) << log_tail(data_dir);
    client c(child.port());
    ASSERT_TRUE(static_cast<bool>(c.command("Account", "acc-a", open_account(10))));
    ASSERT_TRUE(static_cast<bool>(c.command("Account", "acc-b", open_account(0))));
    ASSERT_TRUE(static_cast<bool>(c.command("Transfer", "t-1", request_transfer("acc-a", "acc-b", 50))));
    // The withdraw is rejected (insufficient funds), its answer stored in the item, then the process ends.
    ASSERT_EQ(child.wait_exit(10s), 137) << log_tail(data_dir);
  }
  {
    // The account gets the money the withdraw lacked (no runner running).
    child_node child(data_dir, {pipeline("aggregate.yaml")});
    ASSERT_TRUE(child.ready(20s)) << log_tail(data_dir);
    client c(child.port());
    auto r = c.command("Account", "acc-a", json{{"type", "deposit"}, {"amount", 100}});
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  }
  child_node child(data_dir, runner);
  ASSERT_TRUE(child.ready(20s)) << log_tail(data_dir);
  client c(child.port());
  ASSERT_TRUE(eventually([&] { return c.state("Transfer", "t-1").value("status", "") == "failed"; }))
      << c.state("Transfer", "t-1").dump();
  ASSERT_TRUE(eventually([&] {
    auto r = c.http.Get("/admin/outbox");
    return r && r->status == 200 && r->body.find("\"depth\"") == std::string::npos;
  })) << "the outbox drains";
  EXPECT_EQ(c.state("Transfer", "t-1")["reason"], "withdraw rejected: insufficient_funds");
  EXPECT_EQ(c.state("Account", "acc-a")["balance"], 110) << "nothing withdrawn for a failed transfer";
  EXPECT_EQ(c.state("Account", "acc-b")["balance"], 0);
}

}  // namespace
}  // namespace esflow::runner_test
