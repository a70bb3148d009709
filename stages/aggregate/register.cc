#include "stages/aggregate/register.h"

namespace esflow::stages {

void register_aggregate_stages(graph::stage_registry&) {}

}  // namespace esflow::stages
