// The outbox relay: outbox.scan -> outbox.dispatch -> outbox.confirm
// (docs/contract.md "Runner node", outbox relay). An item is deleted only
// after its dispatch is confirmed; a failed one stays and is retried after a
// backoff (runner_service::release_for_retry); a re-dispatch after a crash
// is harmless because a command's id and an effect's Nats-Msg-Id are derived
// from the item.
//   outbox.scan      source: the items saga commits just wrote (their
//                    hints) and failed items whose backoff ended; a pass of
//                    bounded pages through the outbox at start, after items
//                    were dropped over the bound, and once per `poll`; skips
//                    items in flight or backing off, at most `per_tenant` in
//                    flight per tenant.
//   outbox.dispatch  async: a command goes to its aggregate (in-process to
//                    this process's aggregate pipeline, local.commands) and
//                    its answer is published to WORKFLOW_EVENTS as a command
//                    result; an effect is published to WORKFLOW_COMMANDS.
//   outbox.confirm   async: deletes the item (commit pool) unless the
//                    publish did (the embedded streams write the delete in
//                    the message's own write: publish_request::with); an
//                    item that arrives on the error port is released for a
//                    retry.
//
// Concurrency: scan on its source thread (local reads); dispatch and confirm
// never wait on a TBB worker: answers and publish acks complete them from
// the aggregate pipeline's or the stream's thread.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "stages/runner/crash_point.h"
#include "stages/runner/outbox_work.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "transport/nats/subjects.h"

#include <deque>
#include <map>
#include <unordered_set>

namespace esflow::runner {
namespace {

// An item waiting in outbox.scan; `read_back`: read it as stored before it
// goes (a pass may have listed it, or it comes from a pass or a retry).
struct waiting_item {
  storage::outbox_item item;
  bool read_back = true;
};

// Items waiting for room under their tenant's in-flight limit, by tenant,
// each key once; bounded.
class waiting_items {
 public:
  explicit waiting_items(std::size_t bound) : _bound(bound) {}

  // False when full (the item is not held). An item already held stays as
  // it is: this is its only copy in memory, so it goes out once either way.
  bool add(waiting_item w) {
    if (_keys.contains(w.item.key)) return true;
    if (_keys.size() >= _bound) return false;
    _keys.insert(w.item.key);
    _by_tenant[w.item.tenant].push_back(std::move(w));
    return true;
  }
  std::size_t size() const { return _keys.size(); }
  std::size_t bound() const { return _bound; }

  // Hands out the items of each tenant while `room(tenant)` > 0; true when
  // some were left for lack of room.
  template <typename Room, typename Take>
  bool hand_out(Room&& room, Take&& take) {
    bool limited = false;
    for (auto it = _by_tenant.begin(); it != _by_tenant.end();) {
      auto& q = it->second;
      for (std::size_t n = room(it->first); n > 0 && !q.empty();) {
        auto item = std::move(q.front());
        q.pop_front();
        _keys.erase(item.item.key);
        if (!take(std::move(item))) return limited;
        --n;
      }
      limited = limited || !q.empty();
      it = q.empty() ? _by_tenant.erase(it) : std::next(it);
    }
    return limited;
  }

 private:
  std::size_t _bound;
  std::map<std::string, std::deque<waiting_item>> _by_tenant;
  std::unordered_set<std::string> _keys;
};

class outbox_scan final : public graph::stage {
 public:
  outbox_scan(std::shared_ptr<runner_service> service, stages::context_factory make_context,
              std::size_t batch, std::size_t per_tenant, std::chrono::milliseconds poll)
      : _service(std::move(service)),
        _make_context(std::move(make_context)),
        _batch(batch),
        _per_tenant(per_tenant),
        _poll(poll) {}

  void run(graph::source_output& out) override {
    // Items come from memory: the ones saga commits just wrote (hints) and
    // the ones released for a retry, when their backoff ends. A pass through
    // the outbox (bounded pages) is made only when memory may not hold
    // everything: at start (what a restart left), after items were dropped
    // over the bound, and once per poll as a safety net. A pass walks the
    // deleted items too (tombstones until a compaction), so it is not made
    // for every commit or retry. Whatever a pass or a hint brings waits in
    // `held` until its tenant has room: a backlog drains as fast as the
    // dispatches end, not one pass per poll.
    waiting_items held(std::max<std::size_t>(_service->outbox_hint_bound(), _batch));
    std::multimap<std::chrono::steady_clock::time_point, storage::outbox_item> retries;
    bool need_pass = true, in_pass = false;
    std::string after;
    auto last_pass = std::chrono::steady_clock::now();
    std::size_t seen = 0;  // items met in the current pass: the depth gauge at its end
    // The outbox serial read after the last page a pass read (runner_service::outbox_serial): a
    // commit's item at or below it may have been listed, and sent, by that pass.
    std::uint64_t listed_through = 0;
    bool stopped = false;
    auto take = [&](waiting_item w) {
      // A commit's item that no pass listed before its hint came in goes as written: its hint is
      // its only copy in memory, so nothing else sent or deleted it. Any other is read as stored
      // now: a pass may have listed the item before its commit's hint came, and sent it, and a
      // rejected command's item is deleted after its answer is published: sending that command
      // again from a stale copy could get it accepted.
      if (w.read_back) {
        auto stored = _service->store().outbox().get(w.item.key);
        if (!stored.ok() || !stored.value()) return true;
        w.item.item = std::move(*stored.value());
      }
      stopped = !hand_out(out, std::move(w.item));
      return !stopped;
    };
    auto room = [&](const std::string& tenant) {
      const auto n = _service->in_flight_of(tenant);
      return n < _per_tenant ? _per_tenant - n : 0;
    };
    while (!out.stopping()) {
      auto hints = _service->take_outbox_hints();
      need_pass = need_pass || hints.dropped;
      for (auto& h : hints.items)
        need_pass = !held.add({std::move(h.item), h.serial <= listed_through}) || need_pass;
      for (auto& [when, item] : hints.retries) retries.emplace(when, std::move(item));
      auto now = std::chrono::steady_clock::now();
      while (!retries.empty() && retries.begin()->first <= now) {
        need_pass = !held.add({std::move(retries.begin()->second)}) || need_pass;
        retries.erase(retries.begin());
      }
      const bool limited = held.hand_out(room, take);
      if (stopped) return;
      // A pass starts when memory may miss items and `held` has room for a good part of it.
      if (!in_pass && (need_pass || now - last_pass >= _poll) && held.size() <= held.bound() / 2) {
        in_pass = true;
        need_pass = false;
        after.clear();
        seen = 0;
        last_pass = now;
      }
      if (in_pass) {
        auto page = _service->store().outbox().list(after, _batch);
        listed_through = _service->outbox_serial();
        if (!page.ok()) {
          ESFLOW_WARN("runner", "{}: reading the outbox: {}", _service->pipeline(), page.err().to_string());
          in_pass = false;
          need_pass = true;
        } else {
          seen += page->size();
          const bool page_full = page->size() >= _batch;
          // The cursor before the items move into `held`.
          after = page_full ? page->back().key : std::string();
          bool full = false;
          for (auto& item : page.value()) {
            if (!held.add({std::move(item)})) {
              full = true;  // the rest waits for another pass once `held` has drained
              break;
            }
          }
          if (full || !page_full) {
            in_pass = false;
            need_pass = full;
            if (!full)
              if (auto* metrics = _service->metrics()) metrics->outbox_depth(static_cast<double>(seen));
          }
          // The page's items go out at the top of the loop; the pass goes on after them.
          if (in_pass || !limited) continue;
        }
      }
      now = std::chrono::steady_clock::now();
      auto wait = _poll;
      if (!retries.empty())
        wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(retries.begin()->first - now) +
                                  std::chrono::milliseconds(1));
      if (need_pass) wait = std::min(wait, std::chrono::milliseconds(10));
      // Wait for a commit's items, a freed slot, a retry's time or the next pass.
      _service->wait_for_outbox(std::max(wait, std::chrono::milliseconds(1)), out.stop_token(),
                                held.size() > 0);
    }
  }

 private:
  // Claims the item and sends it on; false when the node is stopping.
  bool hand_out(graph::source_output& out, storage::outbox_item item) {
    if (!_service->claim(item.key, std::chrono::steady_clock::now(), item.tenant)) return true;
    auto m = graph::make_message();
    auto ctx = std::dynamic_pointer_cast<runner_context>(stages::new_ingest_context(_make_context));
    if (!ctx) ctx = std::make_shared<runner_context>();
    ctx->transport = "outbox";
    ctx->tenant_given = true;
    ctx->transport_tenant = item.tenant;
    ctx->tenant = item.tenant;
    ctx->source = "outbox";
    ctx->item = std::move(item);
    m->key = ctx->item.key;
    m->context = std::move(ctx);
    return out.put(std::move(m));
  }

  std::shared_ptr<runner_service> _service;
  stages::context_factory _make_context;
  std::size_t _batch, _per_tenant;
  std::chrono::milliseconds _poll;
};

// Answers that say nothing final about the command: sent again (same id) later.
bool worth_retrying(errc code) {
  return code == errc::unavailable || code == errc::version_conflict || code == errc::internal;
}

class outbox_dispatch final : public graph::stage {
 public:
  explicit outbox_dispatch(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    auto parsed = parse_outbox_work(ctx.item.item);
    if (!parsed.ok()) {
      ESFLOW_ERROR("runner", "{}: outbox item {}: {}: left in place", _service->pipeline(), ctx.item.work_id,
                   parsed.err().message);
      out.fail(std::move(m), std::move(parsed).err());
      out.finish();
      return;
    }
    auto item = std::make_shared<const outbox_work>(std::move(parsed).value());
    ++ctx.attempts;
    ctx.created_ms = item->created_ms;
    if (ctx.item.kind == "effect")
      publish_item(std::move(m), out, _service->commands(), effect_command_request(ctx.item.tenant, *item));
    else
      dispatch_command(std::move(m), out, std::move(item));
  }

 private:
  void dispatch_command(graph::message_ptr m, const graph::emitter& out,
                        std::shared_ptr<const outbox_work> item) {
    auto& ctx = context_of(*m);
    auto port = _service->local_commands();
    const auto tenant = ctx.item.tenant;
    if (item->answer) {
      // Answered (rejected) before a crash or a failed publish: that answer again, never the command.
      publish_item(std::move(m), out, _service->events(), result_request(tenant, *item, *item->answer));
      return;
    }
    auto command = command_envelope(*item, tenant);
    auto* raw = m.release();
    auto on_done = [this, raw, out, item](result<std::string> answer) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        on_answer(std::move(msg), out, *item, std::move(answer));
      });
    };
    // In-process when this process runs the aggregate pipeline (esflow dev), else over NATS.
    if (port && port->is_open()) {
      port->submit({tenant, std::move(command), item->correlation_id, {}}, std::move(on_done));
    } else if (auto* remote = _service->remote()) {
      const auto headers = _service->headers_for(tenant, item->correlation_id, item->trace_id);
      schemas::trace_context trace;
      for (const auto& [k, v] : headers) {
        if (k == "x-correlation-id") trace.correlation_id = v;
        if (k == "traceparent") trace.traceparent = v;
        if (k == "trace-id") trace.trace_id = v;
      }
      remote->submit({tenant, item->aggregate_type, item->aggregate_id, std::move(command), trace},
                     std::move(on_done));
    } else if (port) {
      port->submit({tenant, std::move(command), item->correlation_id, {}}, std::move(on_done));
    } else {
      on_done(error::make(errc::unavailable, "no aggregate pipeline to send commands to"));
    }
  }

  void on_answer(graph::message_ptr m, const graph::emitter& out, const outbox_work& item,
                 result<std::string> answer) {
    auto& ctx = context_of(*m);
    const auto tenant = ctx.item.tenant;
    if (answer.ok()) {
      publish_item(std::move(m), out, _service->events(),
                   result_request(tenant, item,
                                  command_result_body(item, tenant, true, "", "",
                                                      events_of_command_result(answer.value()))));
      return;
    }
    const auto& e = answer.err();
    if (worth_retrying(e.code)) {
      out.fail(std::move(m), e);
      out.finish();
      return;
    }
    auto req =
        result_request(tenant, item,
                       command_result_body(item, tenant, false,
                                           e.code_text.empty() ? std::string(to_string(e.code)) : e.code_text,
                                           e.message, "[]"));
    // A rejection stored nothing at the aggregate: the same command sent again (a crash between
    // this publish and the item's delete) could be accepted, while the saga acts on this
    // rejection. The answer is kept in the item first; a re-dispatch publishes it again.
    // (An acceptance needs no such care: the aggregate answers a re-sent id with the original.)
    auto ws = _service->store().begin();
    _service->store().outbox().put(ws, tenant, ctx.item.kind, ctx.item.work_id,
                                   item_with_answer(ctx.item.item, req.body));
    auto* raw = m.release();
    _service->committer().submit(std::move(ws), [this, raw, out, req = std::move(req)](status st) mutable {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        if (!st.ok()) {
          out.fail(std::move(msg), std::move(st).err());
          out.finish();
          return;
        }
        crash_point("outbox.answered");  // test hook (crash_point.h)
        publish_item(std::move(msg), out, _service->events(), std::move(req));
      });
    });
  }

  // Publishes what the item stands for; the item's delete goes with the
  // message where the stream shares the node store (embedded: one write),
  // else outbox.confirm deletes it after the ack.
  void publish_item(graph::message_ptr m, const graph::emitter& out, storage::workflow_stream& stream,
                    storage::publish_request req) {
    auto& ctx = context_of(*m);
    req.with = std::make_shared<storage::write_set>(_service->store().begin());
    _service->store().outbox().erase(*req.with, ctx.item.tenant, ctx.item.kind, ctx.item.work_id);
    publish_and_end(std::move(m), out, stream, std::move(req), &runner_context::item_deleted);
  }

  // The command result of an item (docs/runner.md "The relay").
  storage::publish_request result_request(const std::string& tenant, const outbox_work& item,
                                          std::string body) const {
    storage::publish_request req;
    req.subject = nats::command_result_subject(tenant, item.saga);
    req.msg_id = nats::tenant_token(tenant) + ":cmdresult:" + item.command_id;
    req.headers = _service->headers_for(tenant, item.correlation_id, item.trace_id);
    req.body = std::move(body);
    return req;
  }

  std::shared_ptr<runner_service> _service;
};

class outbox_confirm final : public graph::stage {
 public:
  explicit outbox_confirm(std::shared_ptr<runner_service> service) : _service(std::move(service)) {}

  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto& ctx = context_of(*m);
    if (m->error) {
      ESFLOW_WARN("runner", "{}: dispatch of {} {} failed (retried later): {}", _service->pipeline(),
                  ctx.item.kind, ctx.item.work_id, m->error->to_string());
      _service->release_for_retry(ctx.item);
      if (auto* metrics = _service->metrics()) metrics->dispatched(false, 0);
      out.finish();
      return;
    }
    crash_point("outbox.dispatched");  // test hook (crash_point.h)
    if (ctx.item_deleted) {
      done(ctx, status{});
      out.finish();
      return;
    }
    auto ws = _service->store().begin();
    _service->store().outbox().erase(ws, ctx.item.tenant, ctx.item.kind, ctx.item.work_id);
    auto* raw = m.release();
    _service->committer().submit(std::move(ws), [this, raw, out](status st) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        done(context_of(*msg), st);
        if (!st.ok()) out.fail(std::move(msg), std::move(st).err());
        out.finish();
      });
    });
  }

 private:
  // The item is deleted (or its delete failed: retried like a failed dispatch).
  void done(runner_context& c, const status& st) {
    if (st.ok())
      _service->release(c.item.key, false);
    else
      _service->release_for_retry(c.item);
    if (auto* metrics = _service->metrics()) {
      const auto ms = c.created_ms, now = _service->now_ms();
      metrics->dispatched(st.ok(), ms != 0 && now >= ms ? static_cast<double>(now - ms) / 1000.0 : -1.0);
    }
  }

  std::shared_ptr<runner_service> _service;
};

}  // namespace

storage::publish_request effect_command_request(const std::string& tenant, const outbox_work& item) {
  storage::publish_request req;
  req.subject = nats::effect_subject(tenant, item.effect);
  req.msg_id = nats::tenant_token(tenant) + ":" + item.command_id;
  req.headers = runner_service::headers_for(tenant, item.correlation_id, item.trace_id);
  req.body = effect_command_body(item, tenant);
  return req;
}

graph::stage_descriptor outbox_scan_descriptor() {
  graph::stage_descriptor d;
  d.kind = "outbox.scan";
  d.provides_context = {"runner"};
  d.node_kind = "runner";
  d.description =
      "the relay's source: the items saga commits wrote, and a pass over the outbox once per poll; bounded "
      "per "
      "tenant";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("batch", 256, "items read per page", 1, 65536),
      graph::int_param("per_tenant", 512, "items of one tenant in flight at most", 1, 65536),
      graph::duration_param("poll", 2000,
                            "a pass over the whole outbox at least this often (a safety net: new items, "
                            "retries, a restart and dropped items do not wait for it)"),
      graph::int_param("max_hints", 65536,
                       "new items held in memory for the scan; past it a pass over the outbox finds them "
                       "(0: passes only)",
                       0, 1 << 20),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = stage_service(init);
    if (!service.ok()) return std::move(service).err();
    service.value()->set_outbox_hint_bound(static_cast<std::size_t>(init.spec.params.integer("max_hints")));
    return std::unique_ptr<graph::stage>(
        new outbox_scan(std::move(service).value(), init.make_context,
                        static_cast<std::size_t>(init.spec.params.integer("batch")),
                        static_cast<std::size_t>(init.spec.params.integer("per_tenant")),
                        std::chrono::milliseconds(init.spec.params.integer("poll"))));
  };
  return d;
}

graph::stage_descriptor outbox_dispatch_descriptor() {
  return runner_stage<outbox_dispatch>(
      "outbox.dispatch",
      "sends an outbox item: a command to its aggregate (answer -> WORKFLOW_EVENTS), an effect to "
      "WORKFLOW_COMMANDS",
      true, false);
}

graph::stage_descriptor outbox_confirm_descriptor() {
  auto d = runner_stage<outbox_confirm>(
      "outbox.confirm",
      "deletes a dispatched item (confirmed); a failed dispatch is released for a retry with backoff", true,
      false);
  d.role = graph::stage_role::sink;
  // It runs where the dispatch completed (the stream's or the aggregate's thread): releasing the
  // item and, off the embedded stream, handing its delete to the commit pool never block, and
  // outbox.dispatch already bounds what is in flight. A TBB task per item fewer.
  d.runs_inline = true;
  d.default_concurrency = graph::concurrency::unlimited();
  return d;
}

}  // namespace esflow::runner
