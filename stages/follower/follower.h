#pragma once
// The follower node kind: the event log of a data directory, tailed from a
// checkpoint (log_follow.cc).
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"

namespace esflow::stages {

graph::node_kind_descriptor follower_kind_descriptor();
graph::stage_descriptor log_follow_descriptor();

}  // namespace esflow::stages
