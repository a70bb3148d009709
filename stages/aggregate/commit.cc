// aggregate.commit: appends the command's events to the event log with the
// expected version (optimistic concurrency) and the command id (idempotency),
// then answers (ctx.result) on `out`.
//
// In the key's turn (keyed parking: every earlier command of the aggregate has
// finished here), before appending:
//  - the decision is checked against the committed head's token: when the
//    state it was decided on is not the latest committed one (a speculative
//    head whose command failed, an evicted cache entry), the command is
//    re-rehydrated and re-decided here first (thread_local sandbox);
//  - a rejection decided by aggregate.decide becomes final (error port).
// Outcomes of the append (completion on the log's commit thread: never
// blocks; emit + finish from there):
//  - ok: the state cache's committed head moves to the new version; a
//    snapshot is written when the commit crosses a multiple of the type's
//    `snapshot_every` (unsynced RocksDB put: rebuildable from the log).
//  - duplicate (the command id is known, same content): accepted,
//    duplicate:true, the original version and events; nothing appended.
//  - version_conflict: the cache entry is dropped and the command retried
//    (emitter.redo: re-rehydrate, re-decide, append) at most `max_retries`
//    times, then version_conflict (409, retryable).
//  - command_id_reused, unavailable, ...: on the error port as they are.
//
// Concurrency: async, keyed (`key: message`): one command per aggregate in
// process()..finish(), later ones parked in arrival order; any number of
// aggregates at once (bounded by the pipeline's max_in_flight and the log's
// queue). process() runs on TBB workers; completions on the commit thread. A
// re-decide that must read JetStream (the aggregate is not cached) runs on
// the service's reader threads: no TBB worker waits on the network.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/aggregate/stages.h"

namespace esflow::aggregate {
namespace {

class commit final : public graph::stage {
 public:
  commit(std::shared_ptr<aggregate_service> service, std::uint32_t max_retries)
      : _service(std::move(service)), _max_retries(max_retries) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    auto& cache = _service->cache();
    // A decision on a guessed never-seen aggregate (rehydrate's guess_new) is
    // verified by the log only when it appends events at expected version 0;
    // a rejection or an empty decision on it is redone on a real read.
    const bool unverified_guess = ctx.guessed_new && ctx.events.empty();
    if (ctx.retry ||
        (!ctx.known_command && (unverified_guess || cache.committed_token(m->key) != ctx.base_token))) {
      ctx.retry = false;
      if (_service->remote_log() && cache.committed_token(m->key) == 0) {
        // Not cached: the re-decide reads the stream, on a reader thread.
        auto* raw = m.release();  // owned by the job, which runs exactly once
        const bool queued = _service->read_async([this, raw, out] {
          graph::run_guarded(out, graph::message_ptr(raw),
                             [&](graph::message_ptr& msg) { redecide_and_append(msg, out); });
        });
        if (!queued) {
          graph::message_ptr msg(raw);
          auto& c = context_of(*msg);
          out.fail(std::move(msg),
                   error::make(errc::unavailable, "too many cold aggregate reads waiting; retry",
                               "tenant=" + c.tenant + " aggregate=" + c.cmd.aggregate_type + "/" +
                                   c.cmd.aggregate_id));
          out.finish();
        }
        return;
      }
      return redecide_and_append(m, out);
    }
    append(m, out);
  }

 private:
  void redecide_and_append(graph::message_ptr& m, const graph::emitter& out) {
    if (auto ok = redecide(context_of(*m)); !ok.ok()) {
      out.fail(std::move(m), std::move(ok).err());
      out.finish();
      return;
    }
    append(m, out);
  }

  void append(graph::message_ptr& m, const graph::emitter& out) {
    auto& ctx = context_of(*m);
    if (ctx.rejection) {
      auto e = std::move(*ctx.rejection);
      ctx.rejection.reset();
      out.fail(std::move(m), std::move(e));
      out.finish();
      return;
    }
    storage::append_request req;
    req.tenant_id = ctx.tenant;
    req.aggregate_type = ctx.cmd.aggregate_type;
    req.aggregate_id = ctx.cmd.aggregate_id;
    req.command_id = ctx.cmd.command_id;
    req.expected_version = ctx.version;
    req.request_hash = ctx.request_hash;
    req.events = std::move(ctx.events);
    ctx.events.clear();
    const bool had_events = !req.events.empty();
    auto* raw = m.release();  // owned by the completion, which runs exactly once
    _service->log().append(std::move(req), [this, raw, out, had_events](result<storage::append_result> r) {
      // On the log's thread: nothing may escape into it.
      graph::run_guarded(out, graph::message_ptr(raw),
                         [&](graph::message_ptr& msg) { on_appended(msg, out, had_events, std::move(r)); });
    });
  }

  // Rehydrate (the cache holds the committed state, or storage does) and
  // decide again: in the key's turn nothing else of this aggregate moves.
  status redecide(aggregate_context& ctx) {
    auto& sb = thread_sandboxes().get(*ctx.type);
    auto r = _service->rehydrate(ctx.tenant, *ctx.type, ctx.cmd.aggregate_id, sb);
    if (!r.ok()) return std::move(r).err();
    ctx.version = r->head.version;
    ctx.state_json = std::move(r->head.state_json);
    ctx.base_token = r->head.token;
    ctx.rejection.reset();
    ctx.known_command = false;
    ctx.guessed_new = false;  // rehydrate() without guess_new: a real read
    // Speculative heads built on the stale decision are void: later commands
    // decide on the committed head again instead of chaining onto them.
    _service->cache().drop_pending(aggregate_key(ctx.tenant, ctx.cmd.aggregate_type, ctx.cmd.aggregate_id));
    if (auto ok = _service->decide_command(*ctx.type, sb, ctx); !ok.ok()) {
      ctx.rejection = std::move(ok).err();
      ctx.events.clear();
    }
    ctx.decided_token = ctx.events.empty() ? ctx.base_token : _service->cache().next_token();
    return {};
  }

  void on_appended(graph::message_ptr& m, const graph::emitter& out, bool had_events,
                   result<storage::append_result> r) {
    auto& ctx = context_of(*m);
    auto& cache = _service->cache();
    const auto& type = *ctx.type;
    if (r.ok()) {
      auto& a = r.value();
      if (a.duplicate) {
        if (had_events) cache.drop_pending(m->key);
      } else if (a.position != 0) {
        cache.commit(m->key, state_head{a.last_version, ctx.new_state_json, a.position, ctx.decided_token});
        maybe_snapshot(ctx, type, a);
        _service->tenants().record(ctx.tenant, a.first_version == 1);
      }
      ctx.result = schemas::command_result{};
      ctx.result.accepted = true;
      ctx.result.aggregate_id = ctx.cmd.aggregate_id;
      ctx.result.version = a.last_version;
      ctx.result.position = a.position;
      ctx.result.duplicate = a.duplicate;
      ctx.result.events = std::move(a.events);
      out.emit(std::move(m));
      out.finish();
      return;
    }
    auto e = std::move(r).err();
    if (e.code == errc::version_conflict) {
      _service->metrics().version_conflict(type.name);
      cache.invalidate(m->key);
      if (ctx.attempts < _max_retries) {
        ++ctx.attempts;
        ctx.retry = true;
        out.redo(std::move(m));
        return;
      }
      e.message = "aggregate " + type.name + "/" + ctx.cmd.aggregate_id + " kept changing: " + e.message +
                  " (after " + std::to_string(ctx.attempts) + " retries)";
    } else if (had_events) {
      cache.drop_pending(m->key);
    }
    out.fail(std::move(m), std::move(e));
    out.finish();
  }

  void maybe_snapshot(const aggregate_context& ctx, const aggregate_type_config& type,
                      const storage::append_result& a) {
    const auto every = static_cast<std::uint64_t>(type.snapshot_every);
    if (every == 0 || a.last_version / every == (a.first_version - 1) / every) return;
    schemas::snapshot snap;
    snap.tenant_id = ctx.tenant;
    snap.aggregate_type = type.name;
    snap.aggregate_id = ctx.cmd.aggregate_id;
    snap.version = a.last_version;
    snap.log_position = a.position;
    snap.state_json = ctx.new_state_json;
    snap.created_at = schemas::now_timestamp();
    if (auto ok = _service->snapshots().put(snap); !ok.ok()) {
      // A snapshot is an optimisation: the log still holds everything.
      ESFLOW_WARN("aggregate", "snapshot of {}/{} at version {} not written: {}", type.name,
                  snap.aggregate_id, snap.version, ok.err().to_string());
      return;
    }
    _service->metrics().snapshot(type.name);
  }

  std::shared_ptr<aggregate_service> _service;
  std::uint32_t _max_retries;
};

}  // namespace

graph::stage_descriptor commit_descriptor() {
  graph::stage_descriptor d;
  d.kind = "aggregate.commit";
  d.node_kind = "aggregate";
  d.mutates_context = true;
  d.needs_context = "aggregate";
  d.description =
      "appends the events (expected version, command id) via group commit; retries conflicts (async)";
  d.async = true;
  d.params = {
      graph::int_param("max_retries", 3, "re-decides after a version conflict before answering it", 0, 100)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    if (auto ok = require_message_key(init); !ok.ok()) return std::move(ok).err();
    auto service = init.service_as<aggregate_service>();
    if (!service) return error::make(errc::internal, "the aggregate node kind made no service");
    return std::unique_ptr<graph::stage>(
        new commit(std::move(service), static_cast<std::uint32_t>(init.spec.params.integer("max_retries"))));
  };
  return d;
}

}  // namespace esflow::aggregate
