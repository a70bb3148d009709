#pragma once
// Descriptors of the aggregate pipeline's stage kinds (one file each);
// register.cc names each once.
#include "graph/stage_descriptor.h"

namespace esflow::aggregate {

graph::stage_descriptor tenant_gate_descriptor();
graph::stage_descriptor decode_command_descriptor();
graph::stage_descriptor rehydrate_descriptor();
graph::stage_descriptor decide_descriptor();
graph::stage_descriptor commit_descriptor();
graph::stage_descriptor publish_descriptor();
graph::stage_descriptor ack_descriptor();

// Keyed stages with per-lane state (rehydrate, decide) and keyed parking
// (commit) need `key: message` (decode.command sets message.key to the
// aggregate key); invalid_config naming the stage otherwise.
status require_message_key(const graph::stage_init& init);

}  // namespace esflow::aggregate
