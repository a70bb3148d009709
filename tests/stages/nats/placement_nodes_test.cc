// Tenant placement between real processes (docs/placement.md): a nats-server,
// two `esflow run pipelines/aggregate-jetstream.yaml --node-id ...` children
// and a gateway child (`esflow run pipelines/gateway.yaml`, an API key for
// every tenant). Tenants listed in TENANT_PLACEMENT are spread by the ring,
// each node answers only its own (NATS routes; HTTP to the other node is
// tenant_not_hosted naming the owner), `esflow tenants move` moves a tenant
// under a continuous load of its commands sent through the gateway without
// losing or doubling one, and after a SIGKILL the dead node's tenant answers
// `unavailable` through the gateway until an operator's forced move brings it
// back with everything acknowledged before the crash.
#include "placement/hash_ring.h"
#include "placement/kv_placement.h"
#include "stages/gateway/api_keys.h"
#include "tests/support/esflow_child.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/nats/nats_connection.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace esflow {
namespace {

using namespace std::chrono_literals;
using testing::esflow_child;

struct answer {
  natsStatus status = NATS_OK;
  nlohmann::json body;
};

class placement_nodes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats::testing::nats_server_fixture::available()) << "nats-server is required";
    ASSERT_TRUE(_server.start());
    _url = "nats://127.0.0.1:" + std::to_string(_server.port());
    _dir = std::filesystem::temp_directory_path() /
           ("esflow-placement-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(_dir);
    nats::connection_options o;
    o.url = _url;
    auto c = nats::nats_connection::connect(o);
    ASSERT_TRUE(c.ok()) << c.err().message;
    _conn = std::move(c).value();
  }
  void TearDown() override {
    _gateway.reset();
    _nodes.clear();
    if (_conn) _conn->close();
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(_dir, ec);
  }

  esflow_child& start_node(const std::string& id) {
    auto& n = _nodes[id];
    n = std::make_unique<esflow_child>(
        std::vector<std::string>{"run",
                                 std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate-jetstream.yaml",
                                 "--node-id", id, "--nats", _url, "--data-dir", (_dir / id).string()},
        (_dir / (id + ".log")).string());
    EXPECT_TRUE(n->ready(20s)) << n->log_tail();
    return *n;
  }

  // The listed tenants a node reports hosting (GET /admin/placement).
  std::set<std::string> hosted(const esflow_child& n) {
    httplib::Client c("127.0.0.1", n.port());
    c.set_read_timeout(2, 0);
    std::set<std::string> out;
    if (auto r = c.Get("/admin/placement"); r && r->status == 200) {
      const auto body = nlohmann::json::parse(r->body);
      for (const auto& t : body["hosted"]) out.insert(t.get<std::string>());
    }
    return out;
  }
  // Polls (bounded) until the node reports exactly `want`.
  bool eventually_hosts(const esflow_child& n, const std::set<std::string>& want) {
    for (int i = 0; i < 200; ++i) {
      if (hosted(n) == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  answer request(const std::string& tenant, const std::string& id, const nlohmann::json& body,
                 int timeout_ms = 2000) {
    const auto subject = "tenant." + tenant + ".command.Account." + id;
    const auto text = body.dump();
    natsMsg* reply = nullptr;
    answer a;
    a.status = natsConnection_Request(&reply, _conn->raw(), subject.c_str(), text.data(),
                                      static_cast<int>(text.size()), timeout_ms);
    if (a.status == NATS_OK) {
      a.body = nlohmann::json::parse(std::string(natsMsg_GetData(reply), natsMsg_GetDataLength(reply)),
                                     nullptr, false);
      natsMsg_Destroy(reply);
    }
    return a;
  }
  static nlohmann::json command(const std::string& type, nlohmann::json payload,
                                const std::string& command_id = {}) {
    payload["type"] = type;
    nlohmann::json c = {{"aggregate_type", "Account"}, {"payload", payload}};
    if (!command_id.empty()) c["command_id"] = command_id;
    return c;
  }
  // POST /v1/commands through the gateway: HTTP status and body.
  std::pair<int, nlohmann::json> via_gateway(const std::string& tenant, const nlohmann::json& body) {
    httplib::Client c("127.0.0.1", _gateway->port());
    c.set_read_timeout(15, 0);
    auto r =
        c.Post("/v1/commands",
               {{"x-tenant-id", tenant}, {"Authorization", "Bearer " + _key}, {"x-request-timeout", "3000"}},
               body.dump(), "application/json");
    if (!r) return {0, nullptr};
    return {r->status, nlohmann::json::parse(r->body, nullptr, false)};
  }
  void start_gateway() {
    const auto keys = (_dir / "keys.jsonl").string();
    auto key = gateway::append_api_key(keys, {"*"}, {"commands", "queries"}, "test");
    ASSERT_TRUE(key.ok()) << key.err().message;
    _key = key.value();
    ::setenv("ESFLOW_KEYS_FILE", keys.c_str(), 1);
    _gateway = std::make_unique<esflow_child>(
        std::vector<std::string>{"run", std::string(ESFLOW_SOURCE_DIR) + "/pipelines/gateway.yaml", "--nats",
                                 _url},
        (_dir / "gateway.log").string());
    ::unsetenv("ESFLOW_KEYS_FILE");
    ASSERT_TRUE(_gateway->ready(20s)) << _gateway->log_tail();
  }

  // Sends one command until it is answered by a node (bounded: the way a
  // gateway retries a command with its id on no responders / unavailable).
  answer request_until_answered(const std::string& tenant, const std::string& id,
                                const nlohmann::json& body) {
    answer a;
    for (int attempt = 0; attempt < 100; ++attempt) {
      a = request(tenant, id, body, 1000);
      const bool retry =
          a.status != NATS_OK || (a.body.is_object() && a.body.value("code", "") == "unavailable");
      if (!retry) return a;
      std::this_thread::sleep_for(20ms);
    }
    return a;
  }
  // The events of one account, read from the log by a node (every page).
  nlohmann::json events(const esflow_child& n, const std::string& tenant, const std::string& id) {
    httplib::Client c("127.0.0.1", n.port());
    c.set_read_timeout(5, 0);
    auto all = nlohmann::json::array();
    std::uint64_t after = 0;
    for (int page = 0; page < 100; ++page) {
      auto r = c.Get("/v1/aggregates/Account/" + id + "/events?limit=1000&after=" + std::to_string(after),
                     {{"x-tenant-id", tenant}});
      if (!r || r->status != 200) break;
      const auto body = nlohmann::json::parse(r->body);
      for (const auto& e : body["events"]) all.push_back(e);
      if (body["next_after"].is_null()) break;
      after = body["next_after"].get<std::uint64_t>();
    }
    return all;
  }
  int esflow_cli(const std::string& args, std::string* out = nullptr) {
    const auto cmd = std::string(ESFLOW_BINARY_DIR) + "/esflow " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return -1;
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) text += buf;
    const int rc = ::pclose(p);
    if (out) *out = text;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  nats::testing::nats_server_fixture _server;
  std::string _url;
  std::filesystem::path _dir;
  std::unique_ptr<nats::nats_connection> _conn;
  std::map<std::string, std::unique_ptr<esflow_child>> _nodes;
  std::unique_ptr<esflow_child> _gateway;
  std::string _key;
};

TEST_F(placement_nodes, tenants_spread_by_the_ring_move_under_load_and_survive_a_killed_node) {
  auto& a = start_node("agg-1");
  auto& b = start_node("agg-2");
  start_gateway();
  ASSERT_FALSE(HasFatalFailure());

  // List 12 tenants (one through the CLI): the ring places them.
  std::vector<std::string> tenants;
  for (int i = 0; i < 12; ++i) tenants.push_back("tenant-" + std::to_string(i));
  {
    auto kv = placement::kv_placement::open(*_conn, {});
    ASSERT_TRUE(kv.ok()) << kv.err().message;
    for (std::size_t i = 1; i < tenants.size(); ++i) ASSERT_TRUE(kv.value()->set_tenant(tenants[i], "").ok());
  }
  std::string out;
  ASSERT_EQ(esflow_cli("tenants add " + tenants[0] + " --nats " + _url, &out), 0) << out;
  auto ring = placement::hash_ring::build({"agg-1", "agg-2"});
  ASSERT_TRUE(ring.ok());
  std::map<std::string, std::set<std::string>> expected;
  for (const auto& t : tenants) expected[std::string(*ring.value().owner(t))].insert(t);
  ASSERT_FALSE(expected["agg-1"].empty());
  ASSERT_FALSE(expected["agg-2"].empty());
  ASSERT_TRUE(eventually_hosts(a, expected["agg-1"])) << nlohmann::json(hosted(a)).dump() << a.log_tail();
  ASSERT_TRUE(eventually_hosts(b, expected["agg-2"])) << nlohmann::json(hosted(b)).dump() << b.log_tail();

  // Every tenant's command is answered (NATS routes it to its owner); a
  // command sent over HTTP to the other node is tenant_not_hosted naming the owner.
  for (const auto& t : tenants) {
    auto r = request(t, "acc-1", command("open_account", {{"initial_balance", 0}}, "open-" + t));
    ASSERT_EQ(r.status, NATS_OK) << t;
    EXPECT_EQ(r.body.value("status", ""), "accepted") << r.body.dump();
    const bool on_a = expected["agg-1"].count(t) != 0;
    httplib::Client other("127.0.0.1", (on_a ? b : a).port());
    auto h = other.Post("/v1/commands", {{"x-tenant-id", t}},
                        command("deposit", {{"amount", 1}}, "http-" + t).dump(), "application/json");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 421);
    auto body = nlohmann::json::parse(h->body);
    EXPECT_EQ(body.value("code", ""), "tenant_not_hosted");
    EXPECT_EQ(body.value("node", ""), on_a ? "agg-1" : "agg-2");
  }

  // Through the gateway, every tenant's command reaches its node.
  for (const auto& t : tenants) {
    auto body = command("deposit", {{"amount", 2}}, "gw-" + t);
    body["aggregate_id"] = "acc-1";
    auto [status, j] = via_gateway(t, body);
    EXPECT_EQ(status, 200) << t << " " << j.dump();
    EXPECT_EQ(j.value("version", 0), 2) << j.dump();
  }

  // Move one of agg-1's tenants to agg-2 under a continuous load of its
  // commands through the gateway; the client resends a 503 with the same
  // command id, as a client of the contract does.
  const auto moving = *expected["agg-1"].begin();
  std::atomic<bool> stop{false};
  std::vector<std::string> acked;
  std::atomic<int> unavailable{0};
  std::thread load([&] {
    for (int i = 0; i < 2000 && !stop.load(); ++i) {
      const auto id = "dep-" + std::to_string(i);
      auto body = command("deposit", {{"amount", 1}}, id);
      body["aggregate_id"] = "acc-1";
      for (int attempt = 0; attempt < 50; ++attempt) {
        auto [status, j] = via_gateway(moving, body);
        if (status == 200 && j.value("status", "") == "accepted") {
          acked.push_back(id);
          break;
        }
        if (status != 503 && status != 504) {
          ADD_FAILURE() << id << ": " << status << " " << j.dump();
          break;
        }
        unavailable.fetch_add(1);
        std::this_thread::sleep_for(20ms);
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  const auto move_started = std::chrono::steady_clock::now();
  const int moved = esflow_cli("tenants move " + moving + " --to agg-2 --nats " + _url, &out);
  const auto move_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - move_started);
  std::this_thread::sleep_for(300ms);
  stop = true;
  load.join();
  ASSERT_EQ(moved, 0) << out << a.log_tail();
  EXPECT_LT(move_ms, 15s) << "the move must finish in bounded time";
  std::printf(
      "moved %s under load in %lld ms (%zu commands acknowledged through the gateway, %d answers 503/504 "
      "resent)\n",
      moving.c_str(), static_cast<long long>(move_ms.count()), acked.size(), unavailable.load());
  ASSERT_GT(acked.size(), 10U);
  EXPECT_EQ(acked.back(), "dep-" + std::to_string(acked.size() - 1))
      << "every command was acknowledged in turn";
  auto agg2 = expected["agg-2"];
  agg2.insert(moving);
  auto agg1 = expected["agg-1"];
  agg1.erase(moving);
  EXPECT_TRUE(eventually_hosts(b, agg2));
  EXPECT_TRUE(eventually_hosts(a, agg1));

  // Every acknowledged command stored exactly once, versions contiguous.
  auto evs = events(b, moving, "acc-1");
  std::map<std::string, int> stored;
  std::uint64_t version = 0;
  for (const auto& e : evs) {
    EXPECT_EQ(e["version"].get<std::uint64_t>(), ++version) << "versions must be contiguous";
    ++stored[e["command_id"].get<std::string>()];
  }
  for (const auto& id : acked)
    EXPECT_EQ(stored[id], 1) << id << " acknowledged but stored " << stored[id] << "x";
  for (const auto& [id, n] : stored) EXPECT_EQ(n, 1) << id << " stored twice";

  // The old node now refuses the tenant's commands, naming the new owner.
  {
    httplib::Client old_node("127.0.0.1", a.port());
    auto h = old_node.Post("/v1/commands", {{"x-tenant-id", moving}},
                           command("deposit", {{"amount", 1}}).dump(), "application/json");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 421);
    EXPECT_EQ(nlohmann::json::parse(h->body).value("node", ""), "agg-2");
  }

  // SIGKILL agg-2: its tenants get no answer until an operator moves them.
  const auto victim = *expected["agg-2"].begin();
  const auto before = events(b, victim, "acc-1").size();
  _nodes["agg-2"]->kill();
  auto lost = request(victim, "acc-1", command("deposit", {{"amount", 5}}, "after-kill"), 500);
  EXPECT_NE(lost.status, NATS_OK) << "no node hosts the tenant: no responders";
  {
    auto body = command("deposit", {{"amount", 5}}, "after-kill");
    body["aggregate_id"] = "acc-1";
    auto [status, j] = via_gateway(victim, body);
    EXPECT_EQ(status, 503) << j.dump();
    EXPECT_EQ(j.value("code", ""), "unavailable");
    EXPECT_TRUE(j.value("retryable", false));
  }
  ASSERT_EQ(
      esflow_cli("tenants move " + victim + " --to agg-1 --force --drain-timeout-ms 1000 --nats " + _url,
                 &out),
      0)
      << out;
  auto again = command("deposit", {{"amount", 5}}, "after-kill");
  again["aggregate_id"] = "acc-1";
  auto [back_status, back] = via_gateway(victim, again);
  for (int i = 0; i < 50 && back_status != 200; ++i) {
    std::this_thread::sleep_for(50ms);
    std::tie(back_status, back) = via_gateway(victim, again);
  }
  EXPECT_EQ(back_status, 200) << back.dump();
  EXPECT_EQ(back.value("status", ""), "accepted") << back.dump();
  auto after = events(a, victim, "acc-1");
  EXPECT_EQ(after.size(), before + 1) << "everything acknowledged before the crash is kept, once";
}

}  // namespace
}  // namespace esflow
