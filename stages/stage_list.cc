// The one list of what this binary knows: every stage kind, every node kind,
// the node settings and the context of pipelines without a node kind. A kind
// is added here and nowhere else (stages/README.md: adding a stage kind or a
// node kind).
#include "stages/aggregate/register.h"
#include "stages/builtin.h"
#include "stages/follower/follower.h"
#include "stages/gateway/register.h"
#include "stages/ingest/register.h"
#include "stages/ingest_context.h"
#include "stages/local_commands.h"
#include "stages/nats/register.h"
#include "stages/node_env.h"
#include "stages/projection/stages.h"
#include "stages/runner/stages.h"

#include <stdexcept>

namespace esflow::stages {
namespace {

// Two kinds with one name is a build mistake, not a runtime condition.
void must(const status& added) {
  if (!added.ok()) throw std::logic_error(added.err().to_string());
}

}  // namespace

void register_builtin_stages(graph::kind_registry& registry) {
  must(registry.add_settings("node", node_settings_schema()));
  registry.set_default_context([] { return std::make_shared<ingest_context>(); });
  // Shared stages: every node kind can use them.
  for (auto make : {source_file_descriptor, source_generator_descriptor, source_workload_descriptor,
                    sink_file_descriptor, sink_null_descriptor, sink_error_log_descriptor, route_descriptor,
                    noop_descriptor, json_set_descriptor, json_require_descriptor, delay_descriptor,
                    tenant_gate_descriptor, decode_command_descriptor, ack_descriptor})
    must(registry.add(make()));
  must(registry.add(local_commands_descriptor()));
  register_ingest_stages(registry);
  register_nats_stages(registry);
  // Node kinds with their stages.
  register_aggregate_stages(registry);
  must(registry.add(follower_kind_descriptor()));
  must(registry.add(log_follow_descriptor()));
  register_projection_stages(registry);
  register_runner_stages(registry);
  register_gateway_stages(registry, make_local_upstreams);
}

}  // namespace esflow::stages
