#pragma once
// The NATS stage kinds of an aggregate node (registered in register.cc).
//
// nats.request (source): core NATS queue subscription on
//   tenant.*.command.> (or only the `hosted` tenants' subjects), queue group
//   `esflow-aggregate`. Concurrency contract: run() only subscribes and waits
//   for the stop; nats.c's delivery thread builds each message (context
//   transport "nats", tenant from the subject token with `_` = empty,
//   subject_type/subject_id, traceparent / x-correlation-id headers) and
//   admits it with source_output::try_put, never put(): a full pipeline is
//   answered `unavailable` at once instead of stalling the delivery thread.
//   The reply handle (completed once by the kind's answering stage,
//   aggregate.answer) publishes the answer (ingest_context::answer, or the
//   rejection) to the request's reply subject with tenant-id,
//   x-correlation-id and traceparent (SendAsap connection: no 1 ms hold).
//   A handle destroyed unanswered replies `internal`.
//
// jetstream.consumer (source): a durable pull consumer
//   `esflow-<pipeline>-<stage>` (shared by replicas), explicit ack. run()
//   loops natsSubscription_Fetch (bounded timeout) on the source thread and
//   admits with put() (blocking there is backpressure, not a TBB worker).
//   Each message carries an ingest_ack: ack() after the durable commit (the
//   `ack` stage), nak() for `unavailable`; the delivery after `max_deliver`
//   attempts goes to the `quarantine` CF (key: consumer + stream sequence,
//   value: message + reason) and is terminated. NOTE: the ack handle is
//   thread-safe and called at most once; unacked messages are redelivered
//   after ack_wait, except those fetched while the node stops (a drain):
//   put() refuses them and they are nak'ed, for another replica now.
#include "common/result.h"
#include "graph/stage_descriptor.h"

#include <nlohmann/json_fwd.hpp>

namespace esflow::storage {
class node_store;
}

namespace esflow::stages {

graph::stage_descriptor nats_request_descriptor();
graph::stage_descriptor jetstream_consumer_descriptor();
// Hands a quarantine record of a jetstream.consumer (its `source` names the
// durable) back to that consumer when it runs on `store` in this process: it
// is admitted like a fetched message (the server's copy is gone); a nak writes
// the record back. errc::not_found when no such consumer runs here,
// errc::unavailable when 1,024 retries already wait.
status retry_quarantined_record(const storage::node_store& store, const nlohmann::json& record);
// tenant.route / tenant.forwarded: replicas that share consumers but keep
// node-local state hand each tenant's messages to its owner (tenant_router.h).
graph::stage_descriptor tenant_route_descriptor();
graph::stage_descriptor tenant_forwarded_descriptor();

}  // namespace esflow::stages
