#pragma once
// The node's HTTP server (cpp-httplib): admin endpoints, metrics and HTTP
// ingest stages share it. Handlers run on the server's own bounded worker
// pool, never on TBB workers, so they may block waiting for a pipeline's answer.
//
// Bounds (transport/README.md "Serving limits"):
// - `workers` handler threads, created at start(), never more;
// - at most `queue` accepted connections wait for a worker; beyond that a
//   connection is answered 503 `unavailable` + Retry-After by a refuser
//   thread without ever reaching a worker;
// - blocking handlers (commands waiting for the pipeline) take a
//   command_slot: at most `workers - reserved` at once, so /health, /metrics
//   and the other admin routes always find a worker;
// - a keep-alive connection gives its worker back when others wait.
//
// NOTE: add routes and configure() before start(); stop() waits for handlers in progress.
#include "common/result.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace esflow::transport {

struct http_limits {
  std::size_t workers = 64;  // handler threads
  std::size_t queue = 256;   // accepted connections waiting for a worker
  std::size_t reserved = 4;  // workers command handlers never take
  std::size_t keep_alive_max = 100;
  std::chrono::seconds keep_alive_timeout{5};
};

// Figures for /metrics and tests (a snapshot; each field read atomically).
struct http_stats {
  std::size_t workers = 0;              // worker threads of the pool (0 before start)
  std::size_t threads = 0;              // live threads of the pool: workers + the refuser
  std::size_t busy = 0;                 // workers serving a connection
  std::size_t queued = 0;               // connections waiting for a worker
  std::size_t commands = 0;             // command slots taken
  std::size_t command_limit = 0;        // workers - reserved
  std::uint64_t rejected_queue = 0;     // connections refused: queue full
  std::uint64_t rejected_commands = 0;  // commands refused: every command slot taken
};

struct http_shared;  // the counters the server, its pool and the handlers share

class http_server {
 public:
  explicit http_server(std::string listen);  // "127.0.0.1:8080"; port 0 picks a free one
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  httplib::Server& routes() { return *_server; }
  // Before start(). Several callers (several http.commands stages): the
  // largest of each bound wins, so no stage gets less than it asked for.
  status configure(const http_limits& limits);
  const http_limits& limits() const { return _limits; }
  // Binds (unavailable with context when the address is taken) and serves on a thread.
  status start();
  void stop();
  int port() const { return _port; }
  const std::string& host() const { return _host; }
  std::string url() const { return "http://" + _host + ":" + std::to_string(_port); }
  http_stats stats() const;

  // Held by a handler for as long as it blocks (a command waiting for its
  // answer); empty when `workers - reserved` are held already (the caller
  // answers 503 unavailable with Retry-After, see retry_after_seconds).
  class command_slot {
   public:
    command_slot() = default;
    explicit command_slot(std::shared_ptr<http_shared> s) : _shared(std::move(s)) {}
    command_slot(command_slot&&) noexcept = default;
    command_slot& operator=(command_slot&&) noexcept;
    ~command_slot();
    explicit operator bool() const { return _shared != nullptr; }

   private:
    std::shared_ptr<http_shared> _shared;
  };
  command_slot try_command_slot();
  static constexpr int retry_after_seconds = 1;

 private:
  std::string _listen;
  std::string _host;
  int _port = 0;
  http_limits _limits;
  bool _configured = false;  // the first configure() replaces the defaults
  std::shared_ptr<http_shared> _shared;
  std::unique_ptr<httplib::Server> _server;
  std::thread _thread;
  std::shared_ptr<std::atomic<int>> _listen_fd = std::make_shared<std::atomic<int>>(-1);
};

// "host:port" -> (host, port); nullopt when malformed.
std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& listen);

}  // namespace esflow::transport
