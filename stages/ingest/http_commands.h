#pragma once
// http.commands: the HTTP ingest of an aggregate node (docs/contract.md "HTTP endpoints of aggregate nodes").
//
//   POST /v1/commands                                  -> CommandResult
//   GET  /v1/aggregates/<type>/<id>                    -> {"aggregate_type","aggregate_id","version","state"}
//   GET  /v1/aggregates/<type>/<id>/events?after&limit -> {"events":[...],"next_after":N|null}
//
// Concurrency contract:
// - Routes and the server's bounds (server_threads, server_queue,
//   reserved_threads) are set by the factory before the shared server starts;
//   handlers run on the server's fixed workers, never on TBB workers, and a
//   command blocks there, holding a command slot, until the pipeline answers
//   or `timeout` passes. No free slot: 503 unavailable + Retry-After at once,
//   so the reserved workers keep serving admin routes and reads
//   (transport/README.md "Serving limits").
// - run() (the source thread) only opens the door: it publishes its
//   source_output to the handlers, waits for the stop, and closes the door.
//   Handlers admit with source_output::try_put (thread-safe), never put():
//   a full pipeline answers 503 at once instead of queueing sockets.
// - Before run() and after the stop every route answers 503 unavailable.
//
// How the answer travels (any node kind; stages/ingest_context.h):
// - the message carries the pipeline's context (stage_init::make_context),
//   filled as a stages::ingest_context (transport "http",
//   tenant_given/transport_tenant from x-tenant-id, idempotency_key,
//   request_id, incoming_traceparent, incoming_correlation_id), and a
//   reply_handle;
// - the kind's answering stage (aggregate.answer) leaves an accepted answer's
//   JSON in ingest_context::answer and calls message.reply->complete(message)
//   once; the handle sends message.error as a rejection (status per
//   docs/contract.md "Rejection codes", body make_rejection) or else the
//   answer (200), with ctx.trace for the trace headers and ctx.tenant for
//   `tenant-id`;
// - NOTE: a handle destroyed without complete() (the message was dropped)
//   answers 500 `internal`; no answer within `timeout` answers 503
//   `unavailable` (the command may or may not have been committed).
#include "common/result.h"
#include "graph/stage_descriptor.h"
#include "schemas/envelopes.h"

#include <cstddef>
#include <string>
#include <vector>

namespace esflow::stages {

graph::stage_descriptor http_commands_descriptor();

}  // namespace esflow::stages
