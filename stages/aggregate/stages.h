#pragma once
// Descriptors of the aggregate pipeline's stage kinds (one file each);
// register.cc names each once.
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"

namespace esflow::aggregate {

// The aggregate node kind (section `aggregates:`, service aggregate_service).
graph::node_kind_descriptor aggregate_kind_descriptor();

graph::stage_descriptor rehydrate_descriptor();
graph::stage_descriptor decide_descriptor();
graph::stage_descriptor commit_descriptor();
graph::stage_descriptor answer_descriptor();
graph::stage_descriptor publish_alias_descriptor();

// Keyed stages with per-lane state (rehydrate, decide) and keyed parking
// (commit) need `key: message` (decode.command sets message.key to the
// aggregate key); invalid_config naming the stage otherwise.
status require_message_key(const graph::stage_init& init);

}  // namespace esflow::aggregate
