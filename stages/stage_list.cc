#include "stages/aggregate/register.h"
#include "stages/builtin.h"
#include "stages/ingest/register.h"
#include "stages/nats/register.h"

#include <stdexcept>

namespace esflow::stages {

void register_builtin_stages(graph::stage_registry& registry) {
  for (auto make : {source_file_descriptor, source_generator_descriptor, sink_file_descriptor,
                    sink_null_descriptor, sink_error_log_descriptor, route_descriptor, noop_descriptor,
                    json_set_descriptor, json_require_descriptor, delay_descriptor}) {
    auto added = registry.add(make());
    // Two kinds with one name is a build mistake, not a runtime condition.
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
  register_aggregate_stages(registry);
  register_ingest_stages(registry);
  register_nats_stages(registry);
}

}  // namespace esflow::stages
