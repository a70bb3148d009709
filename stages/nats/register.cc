#include "stages/nats/register.h"

#include "stages/nats/stages.h"

#include <stdexcept>

namespace esflow::stages {

void register_nats_stages(graph::kind_registry& registry) {
  for (auto make : {nats_request_descriptor, jetstream_consumer_descriptor, tenant_route_descriptor,
                    tenant_forwarded_descriptor}) {
    auto added = registry.add(make());
    // Two kinds with one name is a build mistake, not a runtime condition.
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
}

}  // namespace esflow::stages
