// Faults under load on the JetStream backbone: a NATS outage (commands are
// answered `unavailable` quickly, the node recovers by itself after the
// restart) and the loss of one server of a 3-server cluster with an R3
// AGGREGATE_EVENTS. Afterwards every acknowledged command is in the stream
// exactly once, with contiguous versions per aggregate.
#include "tests/stages/nats/node_env.h"
#include "tests/transport/nats/nats_cluster_fixture.h"
#include "transport/nats/stream_policy.h"

#include <httplib.h>

#include <atomic>
#include <mutex>
#include <set>

namespace esflow::nats::testing {
namespace {

using clock_type = std::chrono::steady_clock;

// What the clients were told: command id -> (aggregate, version).
struct acknowledged {
  std::mutex mu;
  std::map<std::string, std::pair<std::string, std::uint64_t>> commands;
  std::atomic<std::size_t> count{0};

  void add(const std::string& command_id, const std::string& aggregate, std::uint64_t version) {
    std::lock_guard lock(mu);
    commands[command_id] = {aggregate, version};
    ++count;
  }
};

// Every command at most once in the stream, every acknowledged one exactly
// once at its acknowledged version, versions 1..n per aggregate.
void expect_exactly_once(const std::vector<stored_commit>& commits, acknowledged& acked) {
  std::map<std::string, int> per_command;
  std::map<std::string, std::vector<std::uint64_t>> versions;
  std::map<std::string, std::uint64_t> stored_version;
  for (const auto& c : commits) {
    ++per_command[c.command_id];
    versions[c.aggregate_id].push_back(c.first_version);
    stored_version[c.command_id] = c.first_version;
    EXPECT_EQ(c.events, 1U);
  }
  std::size_t duplicates = 0;
  for (const auto& [id, n] : per_command) duplicates += n > 1 ? 1 : 0;
  EXPECT_EQ(duplicates, 0U) << "commands stored more than once";
  std::size_t missing = 0, wrong_version = 0;
  for (const auto& [id, at] : acked.commands) {
    auto it = stored_version.find(id);
    if (it == stored_version.end()) {
      ++missing;
    } else if (it->second != at.second) {
      ++wrong_version;
    }
  }
  EXPECT_EQ(missing, 0U) << "acknowledged commands not in the stream";
  EXPECT_EQ(wrong_version, 0U) << "acknowledged at another version than stored";
  std::size_t gaps = 0;
  for (auto& [agg, vs] : versions) {
    for (std::size_t i = 0; i < vs.size(); ++i)
      if (vs[i] != i + 1) ++gaps;
  }
  EXPECT_EQ(gaps, 0U) << "versions not contiguous in stream order";
}

TEST(node_faults, nats_outage_under_load_fails_fast_and_the_node_recovers_by_itself) {
  nats_server_fixture server;
  ASSERT_TRUE(server.start());
  temp_path dir;
  auto node = serve({shipped_jetstream_pipeline(dir)}, (dir.path() / "data").string(), server.url());
  ASSERT_TRUE(node);
  const auto url = cli::served_url(*node);

  constexpr int threads = 8, per_thread = 150, aggregates_per_thread = 4;
  acknowledged acked;
  std::atomic<std::uint64_t> unavailable{0}, slowest_unavailable_ms{0}, slowest_while_down_ms{0};
  // Steady-clock nanoseconds of the stop (after the server exited) and of the restart; 0: not yet.
  std::atomic<std::int64_t> down_ns{0}, up_ns{0};
  const auto ns = [](clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  std::atomic<int> unfinished{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client http(url);
      http.set_keep_alive(true);
      http.set_read_timeout(20, 0);
      for (int i = 0; i < per_thread; ++i) {
        const auto agg = "o-" + std::to_string(t) + "-" + std::to_string(i % aggregates_per_thread);
        const auto cmd = "oc-" + std::to_string(t) + "-" + std::to_string(i);
        const auto payload = i < aggregates_per_thread ? open_account(0) : deposit(1);
        const auto body = command_body(agg, payload, cmd);
        const auto deadline = clock_type::now() + 30s;
        bool done = false;
        while (!done && clock_type::now() < deadline) {
          const auto t0 = clock_type::now();
          auto r = http.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body, "application/json");
          const auto ms = static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
          // Sent after the stop and before the restart: the node knew the link was down.
          const auto down = down_ns.load(), up = up_ns.load();
          if (down != 0 && ns(t0) > down && (up == 0 || ns(t0) < up)) {
            auto prev = slowest_while_down_ms.load();
            while (ms > prev && !slowest_while_down_ms.compare_exchange_weak(prev, ms)) {
            }
          }
          if (r && r->status == 200) {
            acked.add(cmd, agg, json::parse(r->body).value("version", std::uint64_t{0}));
            done = true;
          } else if (r && r->status == 503) {
            ++unavailable;
            auto prev = slowest_unavailable_ms.load();
            while (ms > prev && !slowest_unavailable_ms.compare_exchange_weak(prev, ms)) {
            }
            std::this_thread::sleep_for(20ms);  // retry with the same command id
          } else {
            ADD_FAILURE() << "unexpected answer: " << (r ? r->body : httplib::to_string(r.error()));
            return;
          }
        }
        if (!done) ++unfinished;
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return acked.count.load() >= 200; }, 20s));
  server.stop();
  const auto down_at = clock_type::now();
  down_ns = ns(down_at);
  // While down: answers keep coming (unavailable), none hangs.
  ASSERT_TRUE(eventually([&] { return unavailable.load() >= 20; }, 10s));
  auto& host = cli::served_host(*node);
  EXPECT_FALSE(host.ready().ok);
  EXPECT_TRUE(host.health().ok) << host.health().detail;
  std::this_thread::sleep_until(down_at + 1500ms);
  up_ns = ns(clock_type::now());
  ASSERT_TRUE(server.start());
  // Recovers without help: ready again, and the load finishes.
  EXPECT_TRUE(eventually([&] { return host.ready().ok; }, 10s)) << host.ready().detail;
  for (auto& c : clients) c.join();
  EXPECT_EQ(unfinished.load(), 0);
  EXPECT_EQ(acked.count.load(), static_cast<std::size_t>(threads * per_thread));
  EXPECT_GT(unavailable.load(), 0U);
  // In flight when the link went: failed at the disconnect event, not by a
  // timer; sent while it was down: at once (the breaker opens at the disconnect).
  EXPECT_LT(slowest_unavailable_ms.load(), 1000U);
  EXPECT_LE(slowest_while_down_ms.load(), 250U) << "a command sent while NATS was down waited for a timer";
  client reader(server.url());
  expect_exactly_once(read_stream(reader.raw()), acked);
}

std::string stream_leader(natsConnection* nc) {
  jsCtx* js = nullptr;
  std::string leader;
  if (natsConnection_JetStream(&js, nc, nullptr) != NATS_OK) return leader;
  jsStreamInfo* si = nullptr;
  if (js_GetStreamInfo(&si, js, "AGGREGATE_EVENTS", nullptr, nullptr) == NATS_OK) {
    if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) leader = si->Cluster->Leader;
    jsStreamInfo_Destroy(si);
  }
  jsCtx_Destroy(js);
  return leader;
}

TEST(node_faults, cluster_loses_the_stream_leader_under_20000_commands_and_loses_nothing) {
  nats_cluster_fixture cluster;
  ASSERT_TRUE(cluster.start()) << "3-server cluster did not come up";
  client admin(cluster.urls());
  ASSERT_TRUE(admin.raw());
  {
    // R3 before the node starts (the node validates; replicas only apply at creation).
    jsCtx* js = nullptr;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    ASSERT_EQ(natsConnection_JetStream(&js, admin.raw(), &jo), NATS_OK);
    streams_config sc;
    sc.replicas = 3;
    auto created = ensure_stream(js, aggregate_events_spec(sc));
    jsCtx_Destroy(js);
    ASSERT_TRUE(created.ok()) << created.err().to_string();
  }
  temp_path dir;
  auto node = serve({shipped_jetstream_pipeline(dir)}, (dir.path() / "data").string(), cluster.urls());
  ASSERT_TRUE(node);

  constexpr int threads = 32, aggregates = 1000, rounds = 20;  // 20,000 commands
  acknowledged acked;
  std::atomic<int> unfinished{0};
  std::atomic<std::uint64_t> retries{0};
  const auto t0 = clock_type::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      client c(cluster.urls());
      for (int r = 0; r < rounds; ++r) {
        for (int a = t; a < aggregates; a += threads) {
          const auto agg = "k-" + std::to_string(a);
          const auto cmd = agg + "-" + std::to_string(r);
          const auto body = command_body(agg, r == 0 ? open_account(0) : deposit(1), cmd);
          const auto subject = "tenant.acme.command.Account." + agg;
          const auto deadline = clock_type::now() + 30s;
          bool done = false;
          while (!done && clock_type::now() < deadline) {
            auto rep = c.request(subject, body, {}, 3000);
            if (rep.status == NATS_OK && rep.body.value("status", "") == "accepted") {
              acked.add(cmd, agg, rep.body.value("version", std::uint64_t{0}));
              done = true;
            } else if (rep.status == NATS_OK && rep.body.value("code", "") != "unavailable") {
              ADD_FAILURE() << "unexpected answer: " << rep.body.dump();
              return;
            } else {
              ++retries;  // timeout, no responders, unavailable: same command id again
              std::this_thread::sleep_for(50ms);
            }
          }
          if (!done) ++unfinished;
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return acked.count.load() >= 5000; }, 60s));
  // The test is named for the leader: find it (bounded), never kill a guess.
  std::string leader;
  eventually(
      [&] {
        leader = stream_leader(admin.raw());
        return !leader.empty();
      },
      10s);
  int victim = -1;
  for (int i = 0; i < nats_cluster_fixture::size; ++i)
    if (leader == "esflow-test-" + std::to_string(i)) victim = i;
  if (victim < 0) {
    for (auto& c : clients) c.join();  // they finish on the healthy cluster
    FAIL() << "the stream leader '" << leader << "' is none of the cluster's servers";
  }
  cluster.server(victim).kill();
  for (auto& c : clients) c.join();
  const auto seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::cout << "[ cluster  ] 20000 commands in " << seconds << " s (" << 20000 / seconds << " cmd/s), leader "
            << leader << " killed, " << retries.load() << " retries\n";
  EXPECT_EQ(unfinished.load(), 0);
  EXPECT_EQ(acked.count.load(), static_cast<std::size_t>(aggregates * rounds));
  client reader(cluster.urls());
  const auto commits = read_stream(reader.raw());
  EXPECT_EQ(commits.size(), static_cast<std::size_t>(aggregates * rounds));
  expect_exactly_once(commits, acked);
}

}  // namespace
}  // namespace esflow::nats::testing
