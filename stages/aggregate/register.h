#pragma once
#include "graph/stage_registry.h"

namespace esflow::stages {
// tenant.gate, decode.command, aggregate.*, publish, ack
void register_aggregate_stages(graph::stage_registry& registry);
}  // namespace esflow::stages
