#pragma once
// What a stage kind tells the registry about itself: the single source of its
// name, description, parameters, ports and factory.
#include "common/result.h"
#include "graph/concurrency.h"
#include "graph/message.h"
#include "graph/params.h"
#include "graph/stage.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace esflow {
class service_registry;
}

namespace esflow::graph {

struct pipeline_spec;
struct stage_spec;

enum class stage_role { source, transform, sink };
std::string_view to_string(stage_role r) noexcept;

struct stage_init {
  const stage_spec& spec;
  const pipeline_spec& pipeline;
  service_registry& services;
  // The service of the stage's node kind (node_kind_descriptor::make_service),
  // null for shared stages and kinds without one.
  std::shared_ptr<void> kind_service;
  // The context ingest stages give new messages (the pipeline's node kind's
  // make_context, else the shared ingest context); never null.
  std::function<std::shared_ptr<message_context>()> make_context;

  template <typename T>
  std::shared_ptr<T> service_as() const {
    return std::static_pointer_cast<T>(kind_service);
  }
};

struct stage_descriptor {
  std::string kind;         // "decode.command"
  std::string description;  // one line, shown by `esflow stages`
  stage_role role = stage_role::transform;
  std::vector<param_spec> params;
  // Output ports besides `error` (which every non-source stage has). Stages
  // whose ports depend on their parameters (route) compute them instead.
  std::vector<std::string> output_ports = {"out"};
  std::function<std::vector<std::string>(const param_values&)> ports_from_params;
  // Completes messages from its own threads via emitter::finish().
  bool async = false;
  // Cheap and never blocks: process() runs on the thread that hands it the
  // message (a source's, an async completion's, the predecessor's worker)
  // instead of in a TBB task, saving a wake-up and a thread hop per message.
  // Only where the stage is unkeyed, unlimited and unbounded; else as usual.
  bool runs_inline = false;
  // The node kind this stage belongs to ("aggregate"); empty for stages every
  // kind can use (ingest, tenant.gate, decode.command, ack, sinks).
  std::string node_kind;
  // Wiring checks (pipeline_loader): the context the stage needs on every
  // message reaching it ("command": decode.command must come first), the
  // contexts it leaves on its `out` (on `error` only what it received), and
  // whether it writes the context (then no fan-out may feed it: copies of a
  // message share one context).
  std::string needs_context;
  std::vector<std::string> provides_context;
  bool mutates_context = false;
  concurrency default_concurrency = concurrency::unlimited();
  std::function<result<std::unique_ptr<stage>>(const stage_init&)> make;
};

}  // namespace esflow::graph
