// decode.command: the command body -> command_context::cmd (docs/contract.md
// "Behaviour clients rely on"). Shared: aggregate nodes decode commands
// here, and so will the gateway before it routes them. Runs after tenant.gate. In order: body size
// (payload_too_large, param max_payload), JSON shape and field formats
// (invalid_command; a malformed body tenant_id is invalid_tenant), the body's
// tenant_id against the gate's tenant (tenant_access_denied; in single-tenant
// mode a non-empty one is invalid_tenant), the subject's type/id against the
// body's (the subject wins; a differing body is invalid_command), the command
// id (body, else Idempotency-Key, else a fresh UUID v7), the aggregate id
// (fresh UUID v7 when absent). Whether the aggregate type is served here is
// the node kind's question (aggregate.rehydrate: invalid_command), asked after
// this one, so the contract's order (tenant, body, type) holds. Sets
// request_hash and message.key = aggregate_key(tenant, type, id) for the
// keyed stages after it.
//
// Concurrency: serial by default (keeps arrival order: the aggregate key that
// orders commands is set here); stateless, so any concurrency is safe where
// order does not matter (HTTP).
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "schemas/json_decode.h"
#include "stages/builtin.h"
#include "stages/ingest_context.h"
#include "storage/event_log.h"

namespace esflow::stages {
namespace {

class decode_command final : public graph::stage {
 public:
  explicit decode_command(std::size_t max_payload) : _max_payload(max_payload) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_for<command_context>(*m, "decode.command");
    auto ok = decode(*m, ctx);
    if (!ok.ok()) {
      out.fail(std::move(m), std::move(ok).err());
      return;
    }
    out.emit(std::move(m));
  }

 private:
  status decode(graph::message& m, command_context& ctx) const {
    if (m.body.size() > _max_payload) {
      return error::make(errc::payload_too_large, "command body of " + std::to_string(m.body.size()) +
                                                      " bytes exceeds the limit of " +
                                                      std::to_string(_max_payload) + " bytes");
    }
    // The body's string has capacity()+1 readable bytes: skip the padding copy when it is enough.
    auto fields = schemas::decode_command(m.body, m.body.capacity() + 1);
    if (!fields.ok()) return std::move(fields).err();
    auto& f = fields.value();
    auto& cmd = f.cmd;
    if (f.has_tenant_id && cmd.tenant_id != ctx.tenant) {
      if (ctx.tenant.empty())
        return error::make(errc::invalid_tenant,
                           "tenant id must be empty in single-tenant mode (field 'tenant_id')");
      return error::make(errc::tenant_access_denied,
                         "the body's tenant_id differs from the request's tenant");
    }
    cmd.tenant_id = ctx.tenant;
    if (!ctx.subject_type.empty()) {
      if (cmd.aggregate_type != ctx.subject_type)
        return error::make(errc::invalid_command, "field 'aggregate_type' '" + cmd.aggregate_type +
                                                      "' differs from the subject's '" + ctx.subject_type +
                                                      "'");
    }
    if (!ctx.subject_id.empty()) {
      // A subject token is input like a body field: same format, same answer.
      if (auto ok = schemas::validate_aggregate_id(ctx.subject_id, "the subject's aggregate id"); !ok.ok())
        return ok;
      if (f.has_aggregate_id && cmd.aggregate_id != ctx.subject_id)
        return error::make(errc::invalid_command, "field 'aggregate_id' '" + cmd.aggregate_id +
                                                      "' differs from the subject's '" + ctx.subject_id +
                                                      "'");
      cmd.aggregate_id = ctx.subject_id;
      f.has_aggregate_id = true;
    }
    if (!f.has_command_id) {
      if (!ctx.idempotency_key.empty()) {
        if (auto v = schemas::validate_command_id(ctx.idempotency_key, "Idempotency-Key"); !v.ok()) return v;
        cmd.command_id = ctx.idempotency_key;
      } else {
        cmd.command_id = schemas::new_uuid_v7();
      }
    }
    if (!f.has_aggregate_id) cmd.aggregate_id = schemas::new_uuid_v7();
    cmd.trace = ctx.trace;
    ctx.request_hash = storage::request_hash(cmd.aggregate_type, cmd.aggregate_id, cmd.payload_json);
    m.key = aggregate_key(ctx.tenant, cmd.aggregate_type, cmd.aggregate_id);
    ctx.cmd = std::move(cmd);
    ctx.decoded = true;
    return {};
  }

  std::size_t _max_payload;
};

}  // namespace

graph::stage_descriptor decode_command_descriptor() {
  graph::stage_descriptor d;
  // Inline by default: the key that orders an aggregate's commands is only
  // known after decode, so the stages before it must keep arrival order;
  // run on the ingest thread (file and JetStream ingest are ordered), each
  // source's order is kept with no TBB task and no hop. A `concurrency` in
  // the pipeline makes it TBB tasks again (`serial` keeps a single order).
  d.default_concurrency = graph::concurrency::unlimited();
  d.runs_inline = true;
  d.kind = "decode.command";
  d.mutates_context = true;
  d.provides_context = {"command"};
  d.description =
      "decodes a command body (simdjson), fills generated ids, checks tenant and subject; keys it";
  d.params = {
      graph::size_param("max_payload", 1 << 20, "largest command body accepted (payload_too_large above)")};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(
        new decode_command(static_cast<std::size_t>(init.spec.params.integer("max_payload"))));
  };
  return d;
}

}  // namespace esflow::stages
