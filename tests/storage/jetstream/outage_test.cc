// NATS outage: the server stops, appends fail fast as unavailable (bounded,
// no hang), the server restarts on the same port and store, the log recovers
// by itself, and no acknowledged append is lost or duplicated.
#include "tests/storage/jetstream/jetstream_env.h"
#include "tests/storage/requests.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

namespace esflow::nats::testing {
namespace {

using namespace std::chrono_literals;
using storage::testing::make_request;
using clock_type = std::chrono::steady_clock;

// append with a deadline on the completion: a hang is a failure, not a stuck test.
std::optional<result<storage::append_result>> append_within(storage::event_log& log,
                                                            storage::append_request r,
                                                            std::chrono::milliseconds within) {
  auto promise = std::make_shared<std::promise<result<storage::append_result>>>();
  auto future = promise->get_future();
  log.append(std::move(r),
             [promise](result<storage::append_result> res) { promise->set_value(std::move(res)); });
  if (future.wait_for(within) != std::future_status::ready) return std::nullopt;
  return future.get();
}

template <class pred>
bool eventually(pred p, std::chrono::milliseconds within) {
  auto deadline = clock_type::now() + within;
  while (clock_type::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return p();
}

TEST(nats_outage, appends_fail_fast_while_down_and_the_log_recovers_after_restart) {
  nats_server_fixture server;
  ASSERT_TRUE(server.start());
  jetstream_options opts;
  opts.publish_timeout = 1000ms;
  opts.request_timeout = 1000ms;
  jetstream_env env(server, opts);

  constexpr int aggregates = 4;
  std::map<std::string, storage::version_t> versions;  // aggregate -> acked version
  std::set<std::string> acked;                         // command ids acknowledged
  for (int i = 0; i < 20; ++i) {
    auto id = "agg-" + std::to_string(i % aggregates);
    auto cmd = "before-" + std::to_string(i);
    auto r = append_within(env.log(), make_request("acme", "Account", id, cmd, versions[id], 1), 5s);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->ok()) << r->err().to_string();
    versions[id] = (*r)->last_version;
    acked.insert(cmd);
  }

  server.stop();
  // Right after the stop (breaker still closed): bounded by publish_timeout.
  std::map<std::string, std::string> unanswered;  // aggregate -> command id that got "unavailable"
  {
    auto t0 = clock_type::now();
    auto r = append_within(env.log(),
                           make_request("acme", "Account", "agg-0", "during-0", versions["agg-0"], 1), 5s);
    ASSERT_TRUE(r.has_value()) << "append hung while NATS was down";
    ASSERT_FALSE(r->ok());
    EXPECT_EQ(r->err().code, errc::unavailable) << r->err().to_string();
    EXPECT_LT(clock_type::now() - t0, 3s);
    unanswered["agg-0"] = "during-0";
  }
  // Prolonged outage: the breaker opens and everything fails at once.
  ASSERT_TRUE(eventually([&] { return env.connection().breaker_open(); }, 5s));
  EXPECT_EQ(env.connection().link_status().state, link_state::reconnecting);
  for (int a = 1; a < aggregates; ++a) {
    auto id = "agg-" + std::to_string(a);
    auto cmd = "during-" + std::to_string(a);
    auto t0 = clock_type::now();
    auto r = append_within(env.log(), make_request("acme", "Account", id, cmd, versions[id], 1), 5s);
    ASSERT_TRUE(r.has_value()) << "append hung with the circuit open";
    ASSERT_FALSE(r->ok());
    EXPECT_EQ(r->err().code, errc::unavailable);
    EXPECT_NE(r->err().message.find("circuit open"), std::string::npos) << r->err().message;
    EXPECT_LT(clock_type::now() - t0, 200ms);
    unanswered[id] = cmd;
  }
  {
    auto t0 = clock_type::now();
    auto v = env.log().current_version("acme", "Account", "agg-1");
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.err().code, errc::unavailable);
    EXPECT_LT(clock_type::now() - t0, 200ms);
  }

  ASSERT_TRUE(server.start());  // same port, same store dir
  ASSERT_TRUE(
      eventually([&] { return env.connection().connected() && !env.connection().breaker_open(); }, 10s));

  // Clients resend what got "unavailable" with the same command ids until answered.
  for (auto& [id, cmd] : unanswered) {
    bool done = false;
    for (int attempt = 0; attempt < 100 && !done; ++attempt) {
      auto r = append_within(env.log(), make_request("acme", "Account", id, cmd, versions[id], 1), 5s);
      ASSERT_TRUE(r.has_value()) << "append hung after restart";
      if (r->ok()) {
        versions[id] = (*r)->last_version;
        acked.insert(cmd);
        done = true;
      } else {
        ASSERT_EQ(r->err().code, errc::unavailable) << r->err().to_string();
        std::this_thread::sleep_for(100ms);
      }
    }
    ASSERT_TRUE(done) << "log did not recover for " << id;
  }
  // And new work goes through.
  for (int a = 0; a < aggregates; ++a) {
    auto id = "agg-" + std::to_string(a);
    auto cmd = "after-" + std::to_string(a);
    auto r = append_within(env.log(), make_request("acme", "Account", id, cmd, versions[id], 1), 5s);
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->ok()) << r->err().to_string();
    versions[id] = (*r)->last_version;
    acked.insert(cmd);
  }

  // Every acknowledged command exactly once, versions contiguous.
  std::multiset<std::string> seen;
  for (int a = 0; a < aggregates; ++a) {
    auto id = "agg-" + std::to_string(a);
    auto events = env.log().read("acme", "Account", id, 0, 1000);
    ASSERT_TRUE(events.ok()) << events.err().to_string();
    ASSERT_EQ(events->size(), versions[id]) << id;
    for (std::size_t i = 0; i < events->size(); ++i) {
      EXPECT_EQ((*events)[i].version, i + 1);
      seen.insert((*events)[i].command_id);
    }
  }
  for (const auto& cmd : acked) EXPECT_EQ(seen.count(cmd), 1u) << cmd;
  EXPECT_EQ(seen.size(), acked.size());
  auto all = env.log().read_from(0, 10000);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), acked.size());
}

TEST(nats_outage, killed_server_loses_no_acknowledged_commit) {
  nats_server_fixture server;
  ASSERT_TRUE(server.start());
  jetstream_options opts;
  opts.publish_timeout = 1000ms;
  jetstream_env env(server, opts);
  // Many aggregates in flight at once, then SIGKILL of the server process.
  std::atomic<int> ok{0}, failed{0}, completed{0};
  std::mutex mu;
  std::set<std::string> acked;
  constexpr int n = 400;
  for (int i = 0; i < n; ++i) {
    auto cmd = "k-" + std::to_string(i);
    env.log().append(make_request("acme", "Account", "agg-" + std::to_string(i), cmd, 0, 1),
                     [&, cmd](result<storage::append_result> r) {
                       if (r.ok()) {
                         std::lock_guard lock(mu);
                         acked.insert(cmd);
                         ++ok;
                       } else {
                         ++failed;
                       }
                       ++completed;
                     });
  }
  // Kill while part of them is acknowledged and the rest is still in flight.
  ASSERT_TRUE(eventually([&] { return ok.load() >= n / 8; }, 10s));
  server.kill();
  ASSERT_TRUE(eventually([&] { return completed.load() == n; }, 10s)) << completed.load();
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(eventually([&] { return env.connection().connected(); }, 10s));
  std::set<std::string> stored;
  ASSERT_TRUE(eventually(
      [&] {
        auto all = env.log().read_from(0, 10000);
        if (!all.ok()) return false;
        stored.clear();
        for (auto& pc : *all) stored.insert(pc.commit.command_id);
        return true;
      },
      10s));
  std::lock_guard lock(mu);
  for (const auto& cmd : acked) EXPECT_EQ(stored.count(cmd), 1u) << cmd;
  EXPECT_GT(ok.load(), 0);
}

}  // namespace
}  // namespace esflow::nats::testing
