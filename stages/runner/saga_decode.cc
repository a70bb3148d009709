// saga.decode: the saga path's decode behind jetstream.consumer sources (the
// runner on JetStream): a message of AGGREGATE_EVENTS (a Commit) or of
// WORKFLOW_EVENTS (a command result, effect result or reminder) becomes the
// saga inputs it carries (saga_input.h), grouped per instance: the message
// keeps the first group and sets its lane key; each further group leaves as
// a message of its own, and the stream message is acked when every part is
// (split_ack.h). A message no saga of this runner cares about goes on with
// no input (acked). An undecodable one fails `invalid_command`.
//
// Concurrency: serial (keeps the consumer's order until the key is set);
// CPU only.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/json_decode.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/split_ack.h"
#include "stages/runner/stages.h"

#include <map>

namespace esflow::runner {
namespace {

class saga_decode final : public graph::stage {
 public:
  explicit saga_decode(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    std::vector<saga_input> inputs;
    if (ctx.subject.find(".aggregate.") != std::string::npos) {
      auto commit = schemas::decode_commit(m->body);
      if (!commit.ok()) {
        out.fail(std::move(m), std::move(commit).err());
        return;
      }
      inputs = inputs_of_commit(_service->sagas(), commit.value());
    } else {
      auto in = input_of_workflow_message(_service->sagas(), ctx.subject, m->body);
      if (!in.ok()) {
        out.fail(std::move(m), std::move(in).err());
        return;
      }
      if (in.value()) inputs.push_back(std::move(*in.value()));
    }
    ctx.source = "jetstream";
    ctx.position = ctx.stream_sequence;
    std::map<std::string, std::vector<saga_input>> groups;
    std::vector<std::string> order;
    for (auto& in : inputs) {
      auto key = instance_key(in.tenant, in.saga, in.correlation_id);
      if (!groups.count(key)) order.push_back(key);
      groups[key].push_back(std::move(in));
    }
    if (order.empty()) {
      out.emit(std::move(m));
      return;
    }
    std::vector<graph::message_ptr> parts;
    if (order.size() > 1) {
      auto state = std::make_shared<split_ack_state>(ctx.ack, static_cast<int>(order.size()));
      for (std::size_t i = 1; i < order.size(); ++i) {
        auto part = graph::make_message();
        auto pctx = std::make_shared<runner_context>(ctx);
        pctx->inputs = std::move(groups[order[i]]);
        pctx->ack = std::make_shared<split_ack>(state);
        part->key = order[i];
        part->context = std::move(pctx);
        parts.push_back(std::move(part));
      }
      ctx.ack = std::make_shared<split_ack>(state);
    }
    ctx.inputs = std::move(groups[order.front()]);
    ctx.transport_tenant = ctx.inputs.front().tenant;
    ctx.tenant_given = true;
    m->key = order.front();
    out.emit(std::move(m));
    for (auto& p : parts) out.emit(std::move(p));
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

graph::stage_descriptor saga_decode_descriptor() {
  graph::stage_descriptor d;
  d.kind = "saga.decode";
  d.node_kind = "runner";
  d.description =
      "stream messages (jetstream.consumer) -> saga inputs, one message per instance, keyed by it";
  // Behind a jetstream.consumer (whose messages carry the kind's context, declared by none).
  d.provides_context = {"runner"};
  d.mutates_context = true;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    return std::unique_ptr<graph::stage>(new saga_decode(std::move(service).value()));
  };
  return d;
}

}  // namespace esflow::runner
