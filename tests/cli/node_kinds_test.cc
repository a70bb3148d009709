// Several node kinds in one process on one data directory, the way `esflow
// dev` runs them: the shipped aggregate and follower pipelines through the
// host function, over HTTP. Both write to the one node store (events and
// snapshots; the follower's checkpoint and its output), and a restart sees
// what both wrote.
#include "cli/app.h"
#include "common/service_registry.h"
#include "graph/kind_registry.h"
#include "stages/builtin.h"
#include "storage/node_store.h"
#include "tests/stages/ingest/http_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace esflow::cli {
namespace {

using nlohmann::json;

const std::string k_pipelines = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";

class dev_process {
 public:
  explicit dev_process(const std::string& data_dir) : _data_dir(data_dir) {
    serve_options o;
    o.http = "127.0.0.1:0";
    o.overrides.data_dir = data_dir;
    o.overrides.http = "127.0.0.1:0";
    auto served = serve_nodes({k_pipelines + "aggregate.yaml", k_pipelines + "follower.yaml"}, o);
    EXPECT_TRUE(served.ok()) << (served.ok() ? "" : served.err().message);
    if (served.ok()) _served = served.value();
  }
  ~dev_process() { stop(); }

  bool ok() const { return _served != nullptr; }
  void stop() {
    if (_served) {
      EXPECT_TRUE(stop_served(*_served).ok());
    }
    _served.reset();
  }
  httplib::Client client() const { return httplib::Client(served_url(*_served)); }
  std::shared_ptr<storage::node_store> store() {
    return served_services(*_served).find<storage::node_store>("store:" +
                                                               storage::normalise_data_dir(_data_dir));
  }
  // Waits (bounded) until the follower's checkpoint reaches `position`.
  bool follower_reached(schemas::position_t position) {
    auto s = store();
    if (!s) return false;
    for (int i = 0; i < 200; ++i) {
      auto cp = s->checkpoints().get({}, "follower");
      if (cp.ok() && cp.value().value_or(0) >= position) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
  transport::node_host& host() { return served_host(*_served); }

 private:
  std::string _data_dir;
  std::shared_ptr<served_nodes> _served;
};

json post(httplib::Client& c, const std::string& id, const std::string& payload) {
  auto r = c.Post("/v1/commands", {{"x-tenant-id", "acme"}},
                  R"({"aggregate_type":"Account","aggregate_id":")" + id + R"(","payload":)" + payload + "}",
                  "application/json");
  EXPECT_TRUE(r) << "no answer";
  if (!r) return nullptr;
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body, nullptr, false);
}

std::vector<json> lines_of(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line) && out.size() < 1000;) out.push_back(json::parse(line));
  return out;
}

TEST(node_kinds, aggregate_and_follower_share_one_data_directory_and_survive_a_restart) {
  storage::testing::temp_dir dir;
  const auto data = dir.str() + "/data";
  const auto followed = data + "/followed-commits.ndjson";
  {
    dev_process dev(data);
    ASSERT_TRUE(dev.ok());
    ASSERT_EQ(dev.host().nodes().size(), 2U);
    EXPECT_EQ(dev.host().nodes()[0]->spec().node_kinds.front()->name, "aggregate");
    EXPECT_EQ(dev.host().nodes()[1]->spec().node_kinds.front()->name, "follower");
    auto c = dev.client();
    EXPECT_EQ(post(c, "acc-1", R"({"type":"open_account","initial_balance":5})")["version"], 1);
    EXPECT_EQ(post(c, "acc-1", R"({"type":"deposit","amount":10})")["version"], 2);
    EXPECT_EQ(post(c, "acc-2", R"({"type":"open_account","initial_balance":0})")["version"], 1);
    ASSERT_TRUE(dev.follower_reached(3)) << "the follower did not read the aggregate's commits";
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200) << health->body;
    EXPECT_NE(health->body.find("ok"), std::string::npos);
  }
  auto first = lines_of(followed);
  ASSERT_EQ(first.size(), 3U);
  EXPECT_EQ(first[0]["position"], 1);
  EXPECT_EQ(first[0]["aggregate_id"], "acc-1");
  EXPECT_EQ(first[0]["tenant_id"], "acme");
  EXPECT_EQ(first[1]["events"][0]["event_type"], "deposited");
  EXPECT_EQ(first[2]["aggregate_id"], "acc-2");

  {
    dev_process dev(data);
    ASSERT_TRUE(dev.ok());
    auto s = dev.store();
    ASSERT_TRUE(s);
    // What both kinds wrote before the restart is there: the follower's checkpoint, the aggregate's state.
    auto cp = s->checkpoints().get({}, "follower");
    ASSERT_TRUE(cp.ok());
    EXPECT_EQ(cp.value(), std::optional<schemas::position_t>(3));
    auto c = dev.client();
    auto state = c.Get("/v1/aggregates/Account/acc-1", {{"x-tenant-id", "acme"}});
    ASSERT_TRUE(state);
    EXPECT_EQ(json::parse(state->body)["state"]["balance"], 15) << state->body;
    EXPECT_EQ(post(c, "acc-1", R"({"type":"withdraw","amount":4})")["version"], 3);
    ASSERT_TRUE(dev.follower_reached(4));
  }
  auto all = lines_of(followed);
  ASSERT_EQ(all.size(), 4U) << "the follower resumed from its checkpoint: nothing twice, nothing skipped";
  std::set<int> positions;
  for (const auto& l : all) positions.insert(l["position"].get<int>());
  EXPECT_EQ(positions, (std::set<int>{1, 2, 3, 4}));
  EXPECT_EQ(all[3]["events"][0]["event_type"], "withdrawn");
}

TEST(node_kinds, two_pipelines_asking_one_directory_for_two_durabilities_do_not_start) {
  storage::testing::temp_dir dir;
  const auto follower = dir.write("follower.yaml", R"(pipeline: f
settings: { data_dir: )" + dir.str() + R"(/data, durability: relaxed }
stages:
  tail: { kind: log.follow }
  out: { kind: sink.null }
flow:
  - tail -> out
)");
  const auto aggregate = dir.write("aggregate.yaml", R"(pipeline: a
settings: { data_dir: )" + dir.str() + R"(/data, durability: fsync }
stages:
  tail: { kind: log.follow, consumer: other }
  out: { kind: sink.null }
flow:
  - tail -> out
)");
  serve_options o;
  auto served = serve_nodes({follower, aggregate}, o);
  ASSERT_FALSE(served.ok());
  EXPECT_NE(served.err().message.find("is open with durability relaxed; pipeline 'a' asks for fsync"),
            std::string::npos)
      << served.err().message;
}

// --- /health tells the truth ---------------------------------------------------------

TEST(node_health, a_closed_node_store_fails_health_with_the_reason) {
  storage::testing::temp_dir dir;
  dev_process dev(dir.str() + "/data");
  ASSERT_TRUE(dev.ok());
  auto c = dev.client();
  auto ok = c.Get("/health");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto store = dev.store();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->close().ok());
  auto failing = c.Get("/health");
  ASSERT_TRUE(failing);
  EXPECT_EQ(failing->status, 503) << failing->body;
  auto j = json::parse(failing->body);
  EXPECT_EQ(j["status"], "failing");
  EXPECT_NE(j["detail"].get<std::string>().find("storage: "), std::string::npos) << failing->body;
  EXPECT_NE(j["detail"].get<std::string>().find("database is closed"), std::string::npos) << failing->body;
}

// Holds every graph worker until released (bounded: 20 s at most).
struct worker_trap {
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> held{0};
};

class trap_stage final : public graph::stage {
 public:
  explicit trap_stage(std::shared_ptr<worker_trap> t) : _trap(std::move(t)) {}
  void process(graph::message_ptr m, const graph::emitter& out) override {
    ++_trap->held;
    std::unique_lock lock(_trap->mu);
    _trap->cv.wait_for(lock, std::chrono::seconds(20), [&] { return _trap->released; });
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<worker_trap> _trap;
};

TEST(node_health, stuck_graph_workers_fail_health) {
  auto trap = std::make_shared<worker_trap>();
  graph::kind_registry reg;
  stages::register_builtin_stages(reg);
  graph::stage_descriptor d;
  d.kind = "test.trap";
  d.description = "blocks its worker until the test releases it (what no stage may do)";
  d.make = [trap](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new trap_stage(trap));
  };
  ASSERT_TRUE(reg.add(std::move(d)).ok());
  storage::testing::temp_dir dir;
  const auto file =
      dir.write("trap.yaml",
                "pipeline: trap\nstages:\n  gen: { kind: source.generator, count: 64 }\n"
                "  trap: { kind: test.trap, concurrency: unlimited }\n  out: { kind: sink.null }\n"
                "flow:\n  - gen -> trap -> out\n");
  serve_options o;
  o.registry = &reg;
  auto served = serve_nodes({file}, o);
  ASSERT_TRUE(served.ok()) << served.err().message;
  const auto release = [&] {
    {
      std::lock_guard lock(trap->mu);
      trap->released = true;
    }
    trap->cv.notify_all();
  };
  // Every worker of the arena sits in the trap (bounded wait for them to arrive).
  // The arena's size: the cores but one (graph/node.cc), unless ESFLOW_GRAPH_THREADS says otherwise.
  const auto workers = static_cast<int>(std::max(2U, std::thread::hardware_concurrency()) - 1);
  for (int i = 0; i < 500 && trap->held.load() < workers; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  httplib::Client c(served_url(*served.value()));
  c.set_read_timeout(10, 0);
  auto stuck = c.Get("/health");
  release();
  ASSERT_TRUE(stuck);
  EXPECT_EQ(stuck->status, 503) << stuck->body;
  EXPECT_NE(stuck->body.find("workers: no graph worker ran a probe task within 1000 ms"), std::string::npos)
      << stuck->body;
  auto fine = c.Get("/health");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 200) << fine->body;
}

}  // namespace
}  // namespace esflow::cli
