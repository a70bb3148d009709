#pragma once
#include "graph/kind_registry.h"

namespace esflow::stages {
// http.commands (and later nats.request, jetstream.consumer)
void register_ingest_stages(graph::kind_registry& registry);
}  // namespace esflow::stages
