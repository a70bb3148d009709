#pragma once
#include "graph/kind_registry.h"

namespace esflow::stages {
// nats.request, jetstream.consumer
void register_nats_stages(graph::kind_registry& registry);
}  // namespace esflow::stages
