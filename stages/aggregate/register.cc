#include "stages/aggregate/register.h"

#include "graph/pipeline_spec.h"
#include "stages/aggregate/stages.h"

#include <stdexcept>

namespace esflow::aggregate {

status require_message_key(const graph::stage_init& init) {
  if (init.spec.key == "message") return {};
  return error::config(
      init.spec.at.to_string() + ": stage '" + init.spec.name + "' (" + init.spec.kind +
      ") needs 'key: message' (decode.command sets message.key to tenant/type/id; per-key order and "
      "per-lane state rely on it)");
}

}  // namespace esflow::aggregate

namespace esflow::stages {

void register_aggregate_stages(graph::kind_registry& registry) {
  using namespace esflow::aggregate;
  for (auto make : {rehydrate_descriptor, decide_descriptor, commit_descriptor, answer_descriptor,
                    publish_alias_descriptor}) {
    auto added = registry.add(make());
    // Two kinds with one name is a build mistake, not a runtime condition.
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
  if (auto added = registry.add(aggregate_kind_descriptor()); !added.ok())
    throw std::logic_error(added.err().to_string());
}

}  // namespace esflow::stages
