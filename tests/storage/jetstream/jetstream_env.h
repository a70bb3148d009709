#pragma once
// A JetStream event log on a real nats-server plus a temp-dir node store (for
// the dedupe family), opened directly with test options (timeouts, clocks).
// The contract suite builds it through the event-log factory instead.
#include "storage/event_log_factory.h"
#include "storage/jetstream/jetstream_event_log.h"
#include "storage/node_store.h"
#include "tests/storage/temp_dir.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/nats/nats_connection.h"

#include <gtest/gtest.h>

#include <memory>

namespace esflow::nats::testing {

using storage::jetstream::jetstream_event_log;
using storage::jetstream::jetstream_options;

// One server for the whole test binary (started on first use, stopped at exit).
inline nats_server_fixture& shared_server() {
  static nats_server_fixture* server = [] {
    auto* s = new nats_server_fixture();
    if (!s->start())
      ADD_FAILURE() << "nats-server did not start (binary: '" << nats_server_fixture::binary() << "')";
    std::atexit([] { delete server; });
    return s;
  }();
  return *server;
}

inline connection_options test_connection_options(const std::string& url) {
  connection_options o;
  o.url = url;
  o.name = "esflow-test";
  o.reconnect_wait_min = std::chrono::milliseconds(20);
  o.reconnect_wait_max = std::chrono::milliseconds(200);
  o.breaker_open_after = std::chrono::milliseconds(300);
  o.ping_interval = std::chrono::milliseconds(500);
  o.drain_timeout = std::chrono::milliseconds(1000);
  return o;
}

// Deletes a stream if present (fresh state for a test).
inline void delete_stream(nats_connection& c, const char* name) {
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = c.jetstream(jo);
  ASSERT_TRUE(js.ok());
  auto s = js_DeleteStream(*js, name, nullptr, nullptr);
  EXPECT_TRUE(s == NATS_OK || s == NATS_NOT_FOUND) << natsStatus_GetText(s);
  jsCtx_Destroy(*js);
}

// The event-log factory's inputs for the "jetstream" backend on `url`, with
// a fresh node store of `dir` and the process-like registry `services`.
struct factory_inputs {
  storage::event_log_settings settings;
  storage::event_log_env env;
};
inline factory_inputs jetstream_factory_inputs(const std::string& url, const std::string& dir,
                                               esflow::service_registry& services) {
  factory_inputs in;
  auto store = storage::node_store::open({.data_dir = dir, .mode = storage::durability::relaxed});
  if (!store.ok()) ADD_FAILURE() << store.err().to_string();
  in.settings.backend = "jetstream";
  in.settings.nats_url = url;
  if (store.ok()) in.env.store = store.value();
  in.env.services = &services;
  return in;
}

class jetstream_env {
 public:
  explicit jetstream_env(nats_server_fixture& server, jetstream_options options = {}, bool fresh = true)
      : _server(server), _options(std::move(options)) {
    open_connection();
    if (fresh && _conn) delete_stream(*_conn, _options.stream.c_str());
    open_log();
  }
  ~jetstream_env() { close(); }

  storage::event_log& log() { return *_log; }
  jetstream_event_log& jetstream() { return *_log; }
  nats_connection& connection() { return *_conn; }
  storage::db& database() { return _store->database(); }
  storage::node_store& store() { return *_store; }

  void open_connection() {
    auto c = nats_connection::connect(test_connection_options(_server.url()));
    if (!c.ok()) FAIL() << c.err().to_string();
    _conn = std::move(c).value();
  }
  void open_log() {
    auto d = storage::node_store::open({.data_dir = _dir.str(), .mode = storage::durability::relaxed});
    if (!d.ok()) FAIL() << d.err().to_string();
    _store = std::move(d).value();
    auto l = jetstream_event_log::open(*_conn, *_store, _options);
    if (!l.ok()) FAIL() << l.err().to_string();
    _log = std::move(l).value();
  }
  void close() {
    if (_log) {
      EXPECT_TRUE(_log->close().ok());
    }
    _log.reset();
    if (_store) {
      EXPECT_TRUE(_store->close().ok());
    }
    _store.reset();
    _conn.reset();
  }
  void reopen() {
    close();
    open_connection();
    open_log();
  }

 private:
  nats_server_fixture& _server;
  jetstream_options _options;
  storage::testing::temp_dir _dir;
  std::unique_ptr<nats_connection> _conn;
  std::shared_ptr<storage::node_store> _store;
  std::unique_ptr<jetstream_event_log> _log;
};

}  // namespace esflow::nats::testing
