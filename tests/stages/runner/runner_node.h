#pragma once
// The shipped pipelines/aggregate.yaml and pipelines/runner-saga.yaml (or,
// on JetStream, their -jetstream twins against the given nats-server) as
// they are, in one process on a temp data dir and a free loopback port (what
// `esflow dev` runs), driven over HTTP as a client would. Either file can be
// left out to stop one side (a runner without its aggregate node: its
// commands wait in the outbox).
#include "cli/app.h"
#include "tests/stages/ingest/http_util.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace esflow::runner_test {

using nlohmann::json;

inline std::string pipeline(const std::string& name) {
  return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/" + name;
}

enum class backend { embedded, jetstream };

inline std::string backend_name(const ::testing::TestParamInfo<backend>& i) {
  return i.param == backend::embedded ? "embedded" : "jetstream";
}

class runner_node {
 public:
  // nats_url empty: the embedded backend.
  explicit runner_node(std::string data_dir, bool aggregate = true, bool runner = true,
                       std::string nats_url = {})
      : runner_node(std::move(data_dir), shipped(aggregate, runner, !nats_url.empty()), nats_url) {}
  // Explicit pipeline files (e.g. a test pipeline written to a temp dir); `grpc`
  // also serves the process's gRPC server on a free loopback port (grpc_target()).
  runner_node(std::string data_dir, const std::vector<std::string>& files, const std::string& nats_url = {},
              bool grpc = false)
      : _data_dir(std::move(data_dir)) {
    const bool js = !nats_url.empty();
    cli::serve_options o;
    o.overrides.data_dir = _data_dir;
    o.overrides.http = "127.0.0.1:0";
    if (grpc) o.overrides.grpc = "127.0.0.1:0";
    if (js) o.overrides.nats_url = nats_url;
    auto served = cli::serve_nodes(files, o);
    EXPECT_TRUE(served.ok()) << served.err().to_string();
    if (!served.ok()) return;
    _served = std::move(served).value();
    auto& host = cli::served_host(*_served);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!host.ready().ok && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_TRUE(host.ready().ok) << host.ready().detail;
    _client = std::make_unique<httplib::Client>(cli::served_url(*_served));
    _client->set_keep_alive(true);
    _client->set_read_timeout(30, 0);
  }
  ~runner_node() {
    _client.reset();
    _served.reset();
  }

  bool ok() const { return _client != nullptr; }
  const std::string& data_dir() const { return _data_dir; }
  std::string url() const { return cli::served_url(*_served); }
  esflow::service_registry& services() { return cli::served_services(*_served); }
  transport::node_host& host() { return cli::served_host(*_served); }
  // "127.0.0.1:<port>" of the gRPC server (constructed with grpc = true).
  std::string grpc_target() const {
    const auto& g = cli::served_host(*_served).grpc();
    return g ? g->target() : std::string();
  }
  httplib::Client& client() { return *_client; }

  json command(const std::string& tenant, const std::string& type, const std::string& id,
               const json& payload) {
    json body = {{"aggregate_type", type}, {"aggregate_id", id}, {"payload", payload}};
    auto r = _client->Post("/v1/commands", {{"x-tenant-id", tenant}}, body.dump(), "application/json");
    return r ? http_test::json_of(r) : json();
  }
  json state(const std::string& tenant, const std::string& type, const std::string& id) {
    auto r = _client->Get("/v1/aggregates/" + type + "/" + id, {{"x-tenant-id", tenant}});
    return r && r->status == 200 ? http_test::json_of(r)["state"] : json();
  }
  json saga(const std::string& tenant, const std::string& correlation_id, int* status = nullptr) {
    auto r = _client->Get("/v1/sagas/Transfer/" + correlation_id, {{"x-tenant-id", tenant}});
    if (status != nullptr) *status = r ? r->status : 0;
    return r && r->status == 200 ? http_test::json_of(r) : json();
  }
  // Polls until pred holds (bounded: 20 s, 10 ms steps).
  bool eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 2000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }
  std::int64_t balance(const std::string& tenant, const std::string& id) {
    auto s = state(tenant, "Account", id);
    return s.is_object() ? s.value("balance", std::int64_t{-1}) : -1;
  }
  std::string transfer_status(const std::string& tenant, const std::string& id) {
    auto s = state(tenant, "Transfer", id);
    return s.is_object() ? s.value("status", "") : "";
  }
  // The summed depth of GET /admin/outbox (-1: no answer).
  long outbox_depth() {
    auto r = _client->Get("/admin/outbox");
    if (!r || r->status != 200) return -1;
    long n = 0;
    for (const auto& p : http_test::json_of(r))
      for (const auto& i : p["items"]) n += i.value("depth", 0L);
    return n;
  }

 private:
  static std::vector<std::string> shipped(bool aggregate, bool runner, bool js) {
    std::vector<std::string> files;
    if (aggregate) files.push_back(pipeline(js ? "aggregate-jetstream.yaml" : "aggregate.yaml"));
    if (runner) files.push_back(pipeline(js ? "runner-saga-jetstream.yaml" : "runner-saga.yaml"));
    return files;
  }

  std::string _data_dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _client;
};

// The value of the first sample of `name` whose labels contain `labels_contain` in a
// Prometheus text scrape; -1 when there is none.
inline double metric(const std::string& text, const std::string& name, const std::string& labels_contain) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.find(labels_contain) == std::string::npos) continue;
    if (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' ') continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// A node serving explicit files (the runner_node constructor that takes them).
using files_node = runner_node;

inline json open_account(std::int64_t n) { return {{"type", "open_account"}, {"initial_balance", n}}; }
inline json request_transfer(const std::string& from, const std::string& to, std::int64_t amount) {
  return {{"type", "request_transfer"}, {"from", from}, {"to", to}, {"amount", amount}};
}

// `count` transfers between accounts acc-0..acc-<accounts-1>: random pairs and amounts in
// [1, max_amount] (some over a balance: rejected withdraws), every tenth to an account never
// opened (a rejected deposit: compensated).
inline std::vector<json> random_transfers(std::mt19937_64& rng, int count, int accounts,
                                          std::int64_t max_amount) {
  const auto account = [](int i) { return "acc-" + std::to_string(i); };
  std::vector<json> out;
  for (int i = 0; i < count; ++i) {
    const int from = static_cast<int>(rng() % static_cast<unsigned>(accounts));
    int to = static_cast<int>(rng() % static_cast<unsigned>(accounts - 1));
    if (to >= from) ++to;
    const auto amount = static_cast<std::int64_t>(1 + rng() % static_cast<std::uint64_t>(max_amount));
    out.push_back(request_transfer(account(from), i % 10 == 9 ? "acc-missing" : account(to), amount));
  }
  return out;
}

}  // namespace esflow::runner_test
