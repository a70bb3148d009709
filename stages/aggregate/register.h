#pragma once
#include "graph/kind_registry.h"

namespace esflow::stages {
// the aggregate node kind and its stages (aggregate.*; `publish` as an alias of aggregate.answer)
void register_aggregate_stages(graph::kind_registry& registry);
}  // namespace esflow::stages
