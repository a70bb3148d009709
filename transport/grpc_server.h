#pragma once
// The node's gRPC server (grpc++ synchronous server): one per process, made
// when a pipeline sets `grpc` (an address; empty = no gRPC), owned by the
// node host beside the HTTP server. Node kinds add their services (the
// projection's QueryService) while their nodes are built; the host starts
// it after every node is built and stops it on drain or stop.
//
// Bounds: handlers run on grpc's sync-server threads, at most `max_threads`
// (a grpc::ResourceQuota); past that a call is answered RESOURCE_EXHAUSTED
// by grpc itself. A handler may block (a query waits at most its wait_ms).
//
// NOTE: add_service() before start(); stop() waits for calls in progress
// (at most `shutdown_grace`, then cancels them). No gRPC header here: the
// services are grpc::Service objects made by the files that serve them.
#include "common/result.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace esflow::transport {

class grpc_server {
 public:
  static constexpr std::size_t max_threads = 32;
  static constexpr std::chrono::seconds shutdown_grace{5};

  explicit grpc_server(std::string listen);  // "127.0.0.1:9090"; port 0 picks a free one
  ~grpc_server();
  grpc_server(const grpc_server&) = delete;
  grpc_server& operator=(const grpc_server&) = delete;

  // Kept alive until the server is destroyed.
  void add_service(std::shared_ptr<grpc::Service> service);
  // Binds (unavailable when the address is taken; invalid_config when
  // malformed) and serves on grpc's threads.
  status start();
  void stop();
  const std::string& listen() const { return _listen; }
  int port() const { return _port; }  // the bound port (after start)
  // "host:port" as bound (after start): what a client dials.
  std::string target() const;

 private:
  std::string _listen;
  std::string _host;
  int _port = 0;
  std::vector<std::shared_ptr<grpc::Service>> _services;
  std::unique_ptr<grpc::Server> _server;
};

}  // namespace esflow::transport
