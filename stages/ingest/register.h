#pragma once
#include "graph/stage_registry.h"

namespace esflow::stages {
// http.commands (and later nats.request, jetstream.consumer)
void register_ingest_stages(graph::stage_registry& registry);
}  // namespace esflow::stages
