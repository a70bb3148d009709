#pragma once
// The runner node kind and its stage kinds (README.md in this folder).
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"
#include "graph/stage.h"
#include "stages/runner/outbox_work.h"
#include "storage/workflow_stream.h"

#include <memory>
#include <string>

namespace esflow::runner {

class runner_service;
struct runner_context;

// A runner stage's service (the node kind made it).
result<std::shared_ptr<runner_service>> stage_service(const graph::stage_init& init);
// The same, refusing a stage without `key: message` (one saga instance's
// inputs must stay in order from saga.follow to saga.commit).
result<std::shared_ptr<runner_service>> keyed_stage_service(const graph::stage_init& init);
// The instance record of the message's inputs into its context (saga.load, and saga.run again
// right before it runs, saga_load.cc); false when the read failed (the message is failed then).
bool load_record(runner_service& service, graph::message_ptr& m, const graph::emitter& out);

// The descriptor of a runner stage that needs the runner context and only its
// service to be made (keyed: refuses a stage without `key: message`).
template <class Stage>
graph::stage_descriptor runner_stage(std::string kind, std::string description, bool async, bool keyed) {
  graph::stage_descriptor d;
  d.kind = std::move(kind);
  d.node_kind = "runner";
  d.description = std::move(description);
  d.needs_context = "runner";
  d.mutates_context = true;
  d.async = async;
  d.default_concurrency = async ? graph::concurrency::bounded(256) : graph::concurrency::bounded(4);
  d.make = [keyed](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = keyed ? keyed_stage_service(init) : stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new Stage(std::move(service).value()));
  };
  return d;
}

// An async stage's end on the thread that completed its write or publish:
// the message (released into `raw`) goes on, or to the error port with the
// error, and the stage's turn for it ends. Nothing escapes into that thread.
void end_async(const graph::emitter& out, graph::message* raw, status st);
// Publishes `req` and ends the async stage with its ack. `wrote_with`, when
// given, is the context's flag set when the stream stored `req.with` in the
// message's own write (publish_ack::wrote_with: the embedded streams).
void publish_and_end(graph::message_ptr m, const graph::emitter& out, storage::workflow_stream& stream,
                     storage::publish_request req, bool runner_context::*wrote_with = nullptr);
// The effect command the relay publishes to WORKFLOW_COMMANDS for an effect
// outbox item (command_id, effect, payload, saga, correlation_id, trace_id):
// tenant.<t>.effect.<effect>, Nats-Msg-Id `<t>:<command id>`, the contract's
// envelope and headers (docs/contract.md "Runner node").
storage::publish_request effect_command_request(const std::string& tenant, const outbox_work& item);

graph::node_kind_descriptor runner_kind_descriptor();
graph::stage_descriptor saga_follow_descriptor();       // saga.follow
graph::stage_descriptor saga_decode_descriptor();       // saga.decode
graph::stage_descriptor saga_dedupe_descriptor();       // saga.dedupe
graph::stage_descriptor saga_load_descriptor();         // saga.load
graph::stage_descriptor saga_run_descriptor();          // saga.run
graph::stage_descriptor saga_commit_descriptor();       // saga.commit
graph::stage_descriptor outbox_scan_descriptor();       // outbox.scan
graph::stage_descriptor outbox_dispatch_descriptor();   // outbox.dispatch
graph::stage_descriptor outbox_confirm_descriptor();    // outbox.confirm
graph::stage_descriptor schedule_scan_descriptor();     // schedule.scan
graph::stage_descriptor schedule_publish_descriptor();  // schedule.publish
graph::stage_descriptor schedule_delete_descriptor();   // schedule.delete
graph::stage_descriptor effect_follow_descriptor();     // effect.follow
graph::stage_descriptor effect_decode_descriptor();     // effect.decode
graph::stage_descriptor effect_gate_descriptor();       // effect.gate
graph::stage_descriptor effect_execute_descriptor();    // effect.execute
graph::stage_descriptor effect_publish_descriptor();    // effect.publish
graph::stage_descriptor effect_done_descriptor();       // effect.done

}  // namespace esflow::runner

namespace esflow::stages {
void register_runner_stages(graph::kind_registry& registry);
}
