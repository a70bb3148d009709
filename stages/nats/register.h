#pragma once
#include "graph/stage_registry.h"

namespace esflow::stages {
// nats.request, jetstream.consumer
void register_nats_stages(graph::stage_registry& registry);
}  // namespace esflow::stages
