#pragma once
// A real aggregate node and projection node in one process (the shipped
// pipelines/aggregate*.yaml and pipelines/projection.yaml as they are, on a
// temp data dir and a free loopback port; with a nats-server fixture the
// JetStream backend), driven over HTTP as a client would; with `grpc` also
// serving gRPC QueryService on a free loopback port (grpc_target()).
#include "cli/app.h"
#include "tests/stages/ingest/http_util.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace esflow::projection_test {

using nlohmann::json;

enum class backend { embedded, jetstream };

inline std::string pipeline(const std::string& name) {
  return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/" + name;
}

class projection_node {
 public:
  // nats_url empty with backend jetstream: a nats-server of its own.
  explicit projection_node(backend b, std::string data_dir = {}, std::string nats_url = {},
                           std::string projection_file = {}, bool grpc = false)
      : _backend(b),
        _nats_url(std::move(nats_url)),
        _projection_file(std::move(projection_file)),
        _grpc(grpc) {
    if (_projection_file.empty()) _projection_file = pipeline("projection.yaml");
    if (b == backend::jetstream && _nats_url.empty()) {
      _nats = std::make_unique<nats::testing::nats_server_fixture>();
      EXPECT_TRUE(_nats->start()) << "nats-server did not start";
      _nats_url = _nats->url();
    }
    _data_dir = data_dir.empty() ? (_dir.path() / "data").string() : std::move(data_dir);
    start();
  }

  void start() {
    cli::serve_options o;
    o.overrides.data_dir = _data_dir;
    o.overrides.http = "127.0.0.1:0";
    if (_grpc) o.overrides.grpc = "127.0.0.1:0";
    if (!_nats_url.empty()) o.overrides.nats_url = _nats_url;
    auto served = cli::serve_nodes(
        {pipeline(_nats_url.empty() ? "aggregate.yaml" : "aggregate-jetstream.yaml"), _projection_file}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    auto& host = cli::served_host(*_served);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!host.ready().ok && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(host.ready().ok) << host.ready().detail;
    _client = std::make_unique<httplib::Client>(cli::served_url(*_served));
    _client->set_keep_alive(true);
    _client->set_read_timeout(30, 0);
  }

  void stop() {
    _client.reset();
    _served.reset();
  }

  ~projection_node() { stop(); }

  httplib::Client& client() { return *_client; }
  std::string url() const { return cli::served_url(*_served); }
  // "127.0.0.1:<port>" of the gRPC server (constructed with grpc = true).
  std::string grpc_target() const {
    const auto& g = cli::served_host(*_served).grpc();
    return g ? g->target() : std::string();
  }
  const std::string& nats_url() const { return _nats_url; }
  const std::string& data_dir() const { return _data_dir; }

  json command(const std::string& tenant, const std::string& id, const json& payload) {
    json body = {{"aggregate_type", "Account"}, {"aggregate_id", id}, {"payload", payload}};
    auto r = _client->Post("/v1/commands", {{"x-tenant-id", tenant}}, body.dump(), "application/json");
    if (!r) return nullptr;
    return http_test::json_of(r);
  }
  // An accepted command's position (0 when it was not accepted).
  std::uint64_t accepted(const std::string& tenant, const std::string& id, const json& payload) {
    auto j = command(tenant, id, payload);
    EXPECT_EQ(j.value("status", ""), "accepted") << j.dump();
    return j.value("position", std::uint64_t{0});
  }

  httplib::Result query(const std::string& tenant, const std::string& view, const httplib::Params& params) {
    httplib::Headers h;
    if (!tenant.empty()) h.emplace("x-tenant-id", tenant);
    return _client->Get("/v1/query/" + view, params, h);
  }
  json query_ok(const std::string& tenant, const std::string& view, const httplib::Params& params) {
    auto r = query(tenant, view, params);
    EXPECT_TRUE(r);
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200) << r->body;
    return http_test::json_of(r);
  }
  // Every row of a query, following next_cursor (bounded pages).
  json all_rows(const std::string& tenant, const std::string& view, httplib::Params params) {
    json rows = json::array();
    std::string cursor;
    for (int page = 0; page < 10000; ++page) {
      auto p = params;
      if (!cursor.empty()) p.emplace("cursor", cursor);
      auto a = query_ok(tenant, view, p);
      if (!a.is_object()) break;
      for (auto& r : a["rows"]) rows.push_back(r);
      if (a["next_cursor"].is_null()) return rows;
      cursor = a["next_cursor"].get<std::string>();
    }
    ADD_FAILURE() << "paging did not end";
    return rows;
  }
  // Waits until the views have processed position p (bounded).
  void wait_for_position(std::uint64_t p) {
    auto r =
        query("acme", "accounts", {{"min_position", std::to_string(p)}, {"wait_ms", "5000"}, {"limit", "1"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }

 private:
  backend _backend;
  http_test::temp_dir _dir;
  std::unique_ptr<nats::testing::nats_server_fixture> _nats;
  std::string _nats_url;
  std::string _projection_file;
  bool _grpc = false;
  std::string _data_dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _client;
};

inline json open_account(std::int64_t n) { return {{"type", "open_account"}, {"initial_balance", n}}; }
inline json deposit(std::int64_t n) { return {{"type", "deposit"}, {"amount", n}}; }
inline json withdraw(std::int64_t n) { return {{"type", "withdraw"}, {"amount", n}}; }
inline json close_account() { return {{"type", "close_account"}}; }

}  // namespace esflow::projection_test
