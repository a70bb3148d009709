#pragma once
// The node's HTTP server (cpp-httplib): admin endpoints, metrics and HTTP
// ingest stages share it. Handlers run on the server's own thread pool, never
// on TBB workers, so they may block waiting for a pipeline's answer.
//
// NOTE: add routes before start(); stop() waits for handlers in progress.
#include "common/result.h"

#include <httplib.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace esflow::transport {

class http_server {
 public:
  explicit http_server(std::string listen);  // "127.0.0.1:8080"; port 0 picks a free one
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  httplib::Server& routes() { return _server; }
  // Binds (unavailable with context when the address is taken) and serves on a thread.
  status start();
  void stop();
  int port() const { return _port; }
  const std::string& host() const { return _host; }
  std::string url() const { return "http://" + _host + ":" + std::to_string(_port); }

 private:
  std::string _listen;
  std::string _host;
  int _port = 0;
  httplib::Server _server;
  std::thread _thread;
  std::shared_ptr<std::atomic<int>> _listen_fd = std::make_shared<std::atomic<int>>(-1);
};

// "host:port" -> (host, port); nullopt when malformed.
std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& listen);

}  // namespace esflow::transport
