#pragma once
// The shipped pipelines/aggregate.yaml and pipelines/runner-saga.yaml as they
// are, in one process on a temp data dir and a free loopback port (what
// `esflow dev` runs), driven over HTTP as a client would. Either file can be
// left out to stop one side (a runner without its aggregate node: its
// commands wait in the outbox).
#include "cli/app.h"
#include "tests/stages/ingest/http_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace esflow::runner_test {

using nlohmann::json;

inline std::string pipeline(const std::string& name) {
  return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/" + name;
}

// A node serving `files` (one process, one data directory, a free loopback port).
class files_node {
 public:
  files_node(const std::string& data_dir, const std::vector<std::string>& files) {
    cli::serve_options o;
    o.overrides.data_dir = data_dir;
    o.overrides.http = "127.0.0.1:0";
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
  ~files_node() {
    _client.reset();
    _served.reset();
  }
  files_node(const files_node&) = delete;
  files_node& operator=(const files_node&) = delete;

  bool ok() const { return _client != nullptr; }
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
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _client;
};

class runner_node : public files_node {
 public:
  explicit runner_node(std::string data_dir, bool aggregate = true, bool runner = true)
      : files_node(data_dir, files(aggregate, runner)) {}

 private:
  static std::vector<std::string> files(bool aggregate, bool runner) {
    std::vector<std::string> f;
    if (aggregate) f.push_back(pipeline("aggregate.yaml"));
    if (runner) f.push_back(pipeline("runner-saga.yaml"));
    return f;
  }
};

inline json open_account(std::int64_t n) { return {{"type", "open_account"}, {"initial_balance", n}}; }
inline json request_transfer(const std::string& from, const std::string& to, std::int64_t amount) {
  return {{"type", "request_transfer"}, {"from", from}, {"to", to}, {"amount", amount}};
}

}  // namespace esflow::runner_test
