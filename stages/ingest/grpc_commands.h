#pragma once
// grpc.commands: CommandService.SubmitCommand (schemas/proto/command_service.proto)
// on the node's gRPC server, into the same pipeline as http.commands and
// nats.request: one more ingest stage, not a second code path
// (docs/contract.md "Gateway (the edge) and tenant placement").
//
// - The Command message becomes the JSON command body decode.command reads
//   (payload_json and metadata_json must each be one JSON object; they are
//   embedded as they are); metadata x-tenant-id is the transport tenant,
//   x-correlation-id / traceparent / x-request-id / idempotency-key as the
//   HTTP headers.
// - Accepted: the CommandResult message (status "accepted"). Rejected: the
//   gRPC status of the contract's table with the rejection's message and
//   trailing metadata esflow-code (and retry-after, esflow-node), as
//   transport/grpc_status.h makes them; no response message.
//
// Without a gRPC server in the process (the pipelines' `grpc` unset) the
// stage is idle, so one pipeline file serves with and without gRPC.
//
// Concurrency: the callback API; no thread waits for the pipeline. A call is
// admitted with source_door::try_put (a full pipeline is UNAVAILABLE at
// once) and finished by the answering stage's reply handle; at most
// `max_in_flight` calls wait at once (beyond: UNAVAILABLE). The client's
// deadline bounds the wait; a handle destroyed unanswered is INTERNAL.
#include "graph/stage_descriptor.h"

namespace esflow::stages {

graph::stage_descriptor grpc_commands_descriptor();

}  // namespace esflow::stages
