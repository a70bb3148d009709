#pragma once
// local.commands: the in-process command ingest of an aggregate pipeline —
// how a runner in the same process (`esflow dev`) sends its outbox commands
// to the local aggregate node, through the same pipeline as HTTP and NATS
// (tenant.gate, decode.command, the aggregate stages, answer).
//
// The stage registers, per data directory, a local_command_port in the
// process's service registry; the runner finds it there. submit() never
// blocks: a pipeline that is not running or is full answers `unavailable`
// at once (the caller retries with the same command id).
//
// NOTE: thread-safe. The callback runs exactly once, on the thread of the
//       stage that answers (a TBB worker or the log's thread) or on the
//       caller's for a refusal; it must not block.
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/stage_descriptor.h"
#include "stages/ingest_context.h"

#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>

namespace esflow::stages {

struct local_command {
  std::string tenant;
  std::string body;  // a Command envelope (docs/contract.md "JSON envelopes")
  std::string correlation_id;
  std::string traceparent;
};

class local_command_port {
 public:
  // ok: the CommandResult JSON of an accepted command; an error: the
  // rejection (its code and message as a client would get them).
  using answer_callback = std::function<void(result<std::string>)>;

  void submit(local_command c, answer_callback done);
  bool is_open() const;

  // The stage's side.
  void open(graph::source_output* out, context_factory make_context);
  void close();

 private:
  mutable std::shared_mutex _mu;
  graph::source_output* _out = nullptr;
  context_factory _make_context;
};

// The port of a data directory (made on first use, by either side).
std::shared_ptr<local_command_port> local_command_port_for(esflow::service_registry& services,
                                                           const std::string& data_dir);

graph::stage_descriptor local_commands_descriptor();

}  // namespace esflow::stages
