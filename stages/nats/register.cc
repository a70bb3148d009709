#include "stages/nats/register.h"

namespace esflow::stages {

void register_nats_stages(graph::stage_registry&) {}

}  // namespace esflow::stages
