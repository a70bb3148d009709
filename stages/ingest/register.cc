#include "stages/ingest/register.h"

#include "stages/ingest/grpc_commands.h"
#include "stages/ingest/http_commands.h"

#include <stdexcept>

namespace esflow::stages {

void register_ingest_stages(graph::kind_registry& registry) {
  for (auto make : {http_commands_descriptor, grpc_commands_descriptor}) {
    auto added = registry.add(make());
    // Two kinds with one name is a build mistake, not a runtime condition.
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
}

}  // namespace esflow::stages
