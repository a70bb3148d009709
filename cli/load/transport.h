#pragma once
// How `esflow load` sends one command and waits for its answer: over HTTP
// (POST /v1/commands), NATS request/reply (tenant.<t>.command.Account.<id>)
// or gRPC (CommandService.SubmitCommand), docs/contract.md.
//
// A transport holds what clients share (NATS connections, gRPC channels, in a
// small pool so many clients do not queue on one socket); each client thread
// takes its own sender. Every send is bounded by the request timeout.
#include "cli/load/outcome.h"
#include "cli/load/workload.h"
#include "common/result.h"

#include <chrono>
#include <memory>
#include <string>

namespace esflow::load {

struct transport_options {
  std::string kind = "http";  // http | nats | grpc
  std::string url;            // http://host:port | nats://host:port[,..] | host:port
  std::string key;            // API key (Authorization: Bearer); http and grpc
  std::chrono::milliseconds timeout{35000};
  int clients = 1;  // sizes the pools
};

// One client's sender: used by one thread at a time.
class command_sender {
 public:
  virtual ~command_sender() = default;
  virtual answer send(const load_item& item) = 0;
};

class transport {
 public:
  virtual ~transport() = default;
  // A sender for client number `client` (0-based).
  virtual std::unique_ptr<command_sender> sender(int client) = 0;
};

// Fails (with the URL) when a NATS server or gRPC target does not answer.
result<std::unique_ptr<transport>> open_transport(const transport_options& options);

result<std::unique_ptr<transport>> open_http_transport(const transport_options& options);
result<std::unique_ptr<transport>> open_nats_transport(const transport_options& options);
result<std::unique_ptr<transport>> open_grpc_transport(const transport_options& options);

// Clients per pooled NATS connection / gRPC channel.
inline constexpr int k_clients_per_connection = 16;

}  // namespace esflow::load
