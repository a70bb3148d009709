#include "stages/ingest/register.h"

namespace esflow::stages {

void register_ingest_stages(graph::stage_registry&) {}

}  // namespace esflow::stages
