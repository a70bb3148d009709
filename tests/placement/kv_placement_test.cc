// TENANT_PLACEMENT against a real nats-server on a free loopback port
// (tests/transport/nats/nats_server_fixture.h): registration, the watch
// (initial values and live changes from another client), compare-and-set
// moves, listeners, the file as fallback and as the last known placement.
// Every wait is bounded in iterations and time.
#include "placement/kv_placement.h"

#include "placement/placement_file.h"
#include "placement/placement_service.h"
#include "tests/transport/nats/nats_server_fixture.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

namespace esflow::placement {
namespace {

using namespace std::chrono_literals;

nats::connection_options test_options(const std::string& url) {
  nats::connection_options o;
  o.url = url;
  o.name = "esflow-placement-test";
  o.connect_timeout = 1000ms;
  o.reconnect_wait_min = 20ms;
  o.reconnect_wait_max = 200ms;
  o.breaker_open_after = 300ms;
  o.ping_interval = 500ms;
  o.drain_timeout = 1000ms;
  return o;
}

// Polls `done` every 10 ms, at most 500 times and 5 s.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (int i = 0; i < 500 && std::chrono::steady_clock::now() < deadline; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

class kv_placement_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats::testing::nats_server_fixture::available())
        << "nats-server is required (deploy/install-deps.sh)";
    ASSERT_TRUE(_server.start()) << "nats-server did not start on " << _server.url();
    _conn = connect();
  }
  std::unique_ptr<nats::nats_connection> connect() {
    auto c = nats::nats_connection::connect(test_options(_server.url()));
    EXPECT_TRUE(c.ok()) << c.err().to_string();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  std::unique_ptr<kv_placement> open(nats::nats_connection& c, std::filesystem::path file = {}) {
    kv_options o;
    o.op_timeout = 2000ms;
    o.watch_poll = 50ms;
    o.file = std::move(file);
    auto kv = kv_placement::open(c, o);
    EXPECT_TRUE(kv.ok()) << kv.err().to_string();
    return kv.ok() ? std::move(kv).value() : nullptr;
  }
  placement_options service_options(std::string node, nats::nats_connection* c) {
    placement_options o;
    o.node_id = std::move(node);
    o.kinds = {"aggregate"};
    o.http = "127.0.0.1:8081";
    o.file = _server.dir() / ("placement-" + o.node_id + ".json");
    o.nats = c;
    o.start_timeout = 1500ms;
    o.watch_poll = 50ms;
    return o;
  }
  static node_registration reg(std::string id) { return {id, {"aggregate"}, "127.0.0.1:8080", "", ""}; }

  nats::testing::nats_server_fixture _server;
  std::unique_ptr<nats::nats_connection> _conn;
};

TEST_F(kv_placement_test, creates_the_bucket_and_the_watch_sees_registered_nodes) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  ASSERT_TRUE(kv->register_node(reg("agg-1")).ok());
  ASSERT_TRUE(kv->register_node(reg("agg-2")).ok());
  ASSERT_TRUE(kv->start_watch().ok());
  auto st = kv->wait_initial(5s);
  ASSERT_TRUE(st.ok()) << st.err().to_string();
  auto now = kv->current();
  ASSERT_EQ(now->nodes().size(), 2u);
  ASSERT_NE(now->registration("agg-1"), nullptr);
  EXPECT_FALSE(now->registration("agg-1")->updated.empty());  // set by register_node
  EXPECT_EQ(now->ring().nodes(), (std::vector<std::string>{"agg-1", "agg-2"}));
  // A live registration after the initial values.
  ASSERT_TRUE(kv->register_node(reg("agg-3")).ok());
  EXPECT_TRUE(eventually([&] { return kv->current()->nodes().size() == 3; }));
  // A removed node leaves the map.
  ASSERT_TRUE(kv->remove_node("agg-2").ok());
  EXPECT_TRUE(eventually([&] { return kv->current()->registration("agg-2") == nullptr; }));
  EXPECT_EQ(kv->current()->ring().nodes(), (std::vector<std::string>{"agg-1", "agg-3"}));
}

// Replicas start together: each finds no bucket and creates it, and the
// server may refuse all creates but the first. Every one must still open it
// (a node that gave up would run alone and take every tenant).
TEST_F(kv_placement_test, nodes_starting_together_all_open_the_bucket) {
  constexpr int k_nodes = 8, k_rounds = 5;
  std::vector<std::unique_ptr<nats::nats_connection>> conns;
  for (int i = 0; i < k_nodes; ++i) {
    conns.push_back(connect());
    ASSERT_NE(conns.back(), nullptr);
  }
  for (int round = 0; round < k_rounds; ++round) {
    std::atomic<int> opened{0};
    std::vector<std::string> errors(k_nodes);
    std::vector<std::thread> ts;
    for (int i = 0; i < k_nodes; ++i)
      ts.emplace_back([&, i] {
        kv_options o;
        o.bucket = "RACE_" + std::to_string(round);
        o.op_timeout = 2000ms;
        auto kv = kv_placement::open(*conns[static_cast<std::size_t>(i)], o);
        if (kv.ok())
          ++opened;
        else
          errors[static_cast<std::size_t>(i)] = kv.err().to_string();
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(opened.load(), k_nodes) << "round " << round << ": " << ::testing::PrintToString(errors);
  }
}

TEST_F(kv_placement_test, an_empty_bucket_ends_its_initial_values_at_once) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  ASSERT_TRUE(kv->start_watch().ok());
  auto st = kv->wait_initial(5s);
  ASSERT_TRUE(st.ok()) << st.err().to_string();
  EXPECT_TRUE(kv->current()->nodes().empty());
  EXPECT_FALSE(kv->current()->owner("acme").has_value());
}

TEST_F(kv_placement_test, set_tenant_from_another_client_reaches_the_watcher_without_restart) {
  auto svc = placement_service::start(service_options("agg-1", _conn.get()));
  ASSERT_TRUE(svc.ok()) << svc.err().to_string();
  ASSERT_EQ((*svc)->source(), placement_source::kv);
  std::atomic<int> calls{0};
  std::atomic<bool> saw_acme{false};
  (*svc)->add_listener([&](map_ptr now) {
    ++calls;
    if (now->owner("acme") == std::optional<std::string>("agg-7")) saw_acme = true;
  });

  auto other_conn = connect();
  ASSERT_NE(other_conn, nullptr);
  auto other = open(*other_conn);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->register_node(reg("agg-2")).ok());
  ASSERT_TRUE(other->set_tenant("acme", "agg-7").ok());
  EXPECT_TRUE(
      eventually([&] { return (*svc)->current()->owner("acme") == std::optional<std::string>("agg-7"); }));
  EXPECT_TRUE(eventually([&] { return saw_acme.load(); }));
  EXPECT_GE(calls.load(), 2);  // agg-2's registration, then acme
  EXPECT_EQ((*svc)->current()->tenants_hosted_by("agg-7"), std::vector<std::string>{"acme"});

  // Back to the ring: the explicit entry "" lets the ring decide.
  ASSERT_TRUE(other->set_tenant("acme", "").ok());
  EXPECT_TRUE(eventually([&] {
    auto m = (*svc)->current();
    return m->owner("acme") == m->ring().owner("acme").value();
  }));
  // The file holds the last applied placement.
  EXPECT_TRUE(eventually([&] {
    auto f = load_placement_file(_server.dir() / "placement-agg-1.json");
    return f.ok() && f->json() == (*svc)->current()->json();
  }));
  other.reset();
  (*svc)->stop();
}

TEST_F(kv_placement_test, a_move_with_the_right_revision_succeeds_and_a_stale_one_is_a_version_conflict) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  auto none = kv->tenant_revision("acme");
  ASSERT_TRUE(none.ok()) << none.err().to_string();
  EXPECT_EQ(*none, 0u);
  auto first = kv->move_tenant("acme", "agg-1", 0);  // 0: no entry yet
  ASSERT_TRUE(first.ok()) << first.err().to_string();
  auto rev = kv->tenant_revision("acme");
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(*rev, *first);

  auto moved = kv->move_tenant("acme", "agg-2", *rev);
  ASSERT_TRUE(moved.ok()) << moved.err().to_string();
  EXPECT_GT(*moved, *rev);

  auto stale = kv->move_tenant("acme", "agg-3", *rev);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::version_conflict);
  EXPECT_EQ(stale.err().message, "tenant acme: placement revision is " + std::to_string(*moved) +
                                     ", expected " + std::to_string(*rev));
  auto again_create = kv->move_tenant("acme", "agg-3", 0);
  ASSERT_FALSE(again_create.ok());
  EXPECT_EQ(again_create.err().code, errc::version_conflict);

  ASSERT_TRUE(kv->start_watch().ok());
  ASSERT_TRUE(kv->wait_initial(5s).ok());
  EXPECT_EQ(kv->current()->owner("acme"), "agg-2");  // the stale move changed nothing
}

TEST_F(kv_placement_test, bad_ids_are_refused_before_reaching_the_bucket) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  auto st = kv->set_tenant("a.b", "agg-1");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_config);
  EXPECT_EQ(st.err().message, "tenant id 'a.b' is not [A-Za-z0-9_-]{1,64}");
  st = kv->set_tenant("acme", "agg>");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().message, "node id 'agg>' is not [A-Za-z0-9_-]{1,64}");
}

TEST_F(kv_placement_test, no_nats_connection_at_start_uses_the_file) {
  const auto file = _server.dir() / "fallback.json";
  auto m = placement_map::make({{"agg-1", reg("agg-1")}, {"agg-2", reg("agg-2")}}, {{"acme", "agg-2"}});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(save_placement_file(file, *m).ok());
  auto o = service_options("agg-1", nullptr);
  o.file = file;
  auto svc = placement_service::start(o);
  ASSERT_TRUE(svc.ok()) << svc.err().to_string();
  EXPECT_EQ((*svc)->source(), placement_source::file);
  EXPECT_EQ((*svc)->kv(), nullptr);
  EXPECT_EQ((*svc)->current()->owner("acme"), "agg-2");
  EXPECT_EQ((*svc)->current()->json(), m->json());
}

TEST_F(kv_placement_test, a_stopped_server_at_start_uses_the_file_within_the_bound) {
  // The node knew agg-3 as the owner of acme when KV last answered.
  const auto file = _server.dir() / "last-known.json";
  {
    auto svc = placement_service::start(service_options("agg-1", _conn.get()));
    ASSERT_TRUE(svc.ok()) << svc.err().to_string();
    ASSERT_EQ((*svc)->source(), placement_source::kv);
    ASSERT_TRUE((*svc)->kv()->set_tenant("acme", "agg-3").ok());
    ASSERT_TRUE(eventually([&] {
      auto f = load_placement_file(_server.dir() / "placement-agg-1.json");
      return f.ok() && f->owner("acme") == std::optional<std::string>("agg-3");
    }));
    std::filesystem::copy_file(_server.dir() / "placement-agg-1.json", file);
  }
  _server.stop();
  auto o = service_options("agg-1", _conn.get());
  o.file = file;
  o.start_timeout = 1000ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto svc = placement_service::start(o);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(svc.ok()) << svc.err().to_string();
  EXPECT_EQ((*svc)->source(), placement_source::file);
  EXPECT_EQ((*svc)->current()->owner("acme"), "agg-3");
  EXPECT_LT(took, 5s);
}

TEST_F(kv_placement_test, no_server_and_no_file_leaves_the_node_alone) {
  auto o = service_options("agg-1", nullptr);
  o.file = _server.dir() / "absent.json";
  auto svc = placement_service::start(o);
  ASSERT_TRUE(svc.ok()) << svc.err().to_string();
  EXPECT_EQ((*svc)->source(), placement_source::none);
  EXPECT_EQ((*svc)->current()->owner("acme"), "agg-1");
}

TEST_F(kv_placement_test, a_malformed_fallback_file_stops_the_start_naming_it) {
  const auto file = _server.dir() / "broken.json";
  std::ofstream(file) << "not json";
  auto o = service_options("agg-1", nullptr);
  o.file = file;
  auto svc = placement_service::start(o);
  ASSERT_FALSE(svc.ok());
  EXPECT_EQ(svc.err().code, errc::invalid_config);
  EXPECT_EQ(svc.err().message, file.string() + ": not valid JSON");
}

TEST_F(kv_placement_test, stop_returns_promptly_while_the_watcher_waits) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  ASSERT_TRUE(kv->start_watch().ok());
  ASSERT_TRUE(kv->wait_initial(5s).ok());
  std::this_thread::sleep_for(100ms);  // the watcher is inside kvWatcher_Next
  const auto t0 = std::chrono::steady_clock::now();
  kv->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(kv_placement_test, the_watch_survives_a_server_restart) {
  auto kv = open(*_conn);
  ASSERT_NE(kv, nullptr);
  ASSERT_TRUE(kv->register_node(reg("agg-1")).ok());
  ASSERT_TRUE(kv->start_watch().ok());
  ASSERT_TRUE(kv->wait_initial(5s).ok());
  ASSERT_TRUE(_server.restart());
  // The same connection reconnects; a change made after the restart reaches the watcher.
  bool set = eventually([&] { return kv->set_tenant("acme", "agg-5").ok(); });
  ASSERT_TRUE(set);
  EXPECT_TRUE(
      eventually([&] { return kv->current()->owner("acme") == std::optional<std::string>("agg-5"); }));
  EXPECT_NE(kv->current()->registration("agg-1"), nullptr);
}

}  // namespace
}  // namespace esflow::placement
