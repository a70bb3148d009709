// The outbox relay: outbox.scan -> outbox.dispatch -> outbox.confirm
// (docs/contract.md "Runner node", outbox relay). An item is deleted only
// after its dispatch is confirmed; a failed one stays and is retried after a
// backoff (runner_service::release); a re-dispatch after a crash is harmless
// because a command's id and an effect's Nats-Msg-Id are derived from the
// item.
//   outbox.scan      source: the items saga commits just wrote (their
//                    hints), and at most once per `poll` a pass of bounded
//                    pages through the outbox for the rest; skips items in
//                    flight or backing off, at most `per_tenant` in flight
//                    per tenant.
//   outbox.dispatch  async: a command goes to its aggregate (in-process to
//                    this process's aggregate pipeline, local.commands) and
//                    its answer is published to WORKFLOW_EVENTS as a command
//                    result; an effect is published to WORKFLOW_COMMANDS.
//   outbox.confirm   async: deletes the item (commit pool); an item that
//                    arrives on the error port is released for a retry.
//
// Concurrency: scan on its source thread (local reads); dispatch and confirm
// never wait on a TBB worker: answers and publish acks complete them from
// the aggregate pipeline's or the stream's thread.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "stages/runner/crash_point.h"
#include "stages/runner/runner_metrics.h"
#include "stages/runner/runner_service.h"
#include "stages/runner/stages.h"
#include "transport/nats/subjects.h"

#include <nlohmann/json.hpp>

#include <deque>
#include <map>

namespace esflow::runner {
namespace {

using nlohmann::json;

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
    // New items arrive as hints from the saga commits and are handed out at
    // once. A pass through the outbox (a cursor wrapping at its end) finds
    // everything else: items from before a restart, retries after their
    // backoff, dropped hints. A pass walks the deleted items too (tombstones
    // until a compaction), so passes start at most once per poll instead of
    // after every commit.
    std::string after;
    bool in_pass = true;  // the first pass finds what a restart left
    auto pass_started = std::chrono::steady_clock::now();
    std::size_t seen = 0;  // items met in the current pass: the depth gauge at its end
    // Hints over the per-tenant limit, by tenant; bounded like the hints.
    std::map<std::string, std::deque<storage::outbox_item>> held;
    std::size_t held_count = 0;
    // Hints were dropped: items only a pass finds wait in the outbox, so passes
    // follow each other (as many as wakes) until one ends without a skip.
    bool overflow = false;
    while (!out.stopping()) {
      auto hints = _service->take_outbox_hints();
      if (hints.dropped) overflow = in_pass = true;
      for (auto& h : hints.items) {
        auto& q = held[h.tenant];
        q.push_back(std::move(h));
        ++held_count;
      }
      if (held_count > _service->outbox_hint_bound()) {
        held.clear();  // a pass finds them
        held_count = 0;
        overflow = in_pass = true;
      }
      bool limited = false;
      for (auto it = held.begin(); it != held.end() && !out.stopping();) {
        auto& q = it->second;
        // One count per tenant and wake: in_flight_of walks the claims.
        const auto in_flight = _service->in_flight_of(it->first);
        std::size_t room = in_flight < _per_tenant ? _per_tenant - in_flight : 0;
        while (room > 0 && !q.empty()) {
          auto item = std::move(q.front());
          q.pop_front();
          --held_count;
          // Still there (a pass may have dispatched and confirmed it meanwhile), as stored now.
          auto stored = _service->store().outbox().get(item.key);
          if (!stored.ok() || !stored.value()) continue;
          item.item = std::move(*stored.value());
          if (!hand_out(out, std::move(item))) return;
          --room;
        }
        limited = limited || !q.empty();
        it = q.empty() ? held.erase(it) : std::next(it);
      }
      bool page_full = false, pass_limited = false;
      if (in_pass) {
        auto page = _service->store().outbox().list(after, _batch);
        if (!page.ok()) {
          ESFLOW_WARN("runner", "{}: reading the outbox: {}", _service->pipeline(), page.err().to_string());
          after.clear();
          in_pass = false;
        } else {
          seen += page->size();
          for (auto& item : page.value()) {
            if (_service->in_flight_of(item.tenant) >= _per_tenant) {
              limited = pass_limited = true;
              continue;
            }
            if (!hand_out(out, std::move(item))) return;
          }
          page_full = page->size() >= _batch;
          after = page_full ? page->back().key : std::string();
          if (!page_full) {
            if (auto* metrics = _service->metrics()) metrics->outbox_depth(static_cast<double>(seen));
            seen = 0;
            in_pass = overflow = overflow && pass_limited;
          }
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (!in_pass && now - pass_started >= _poll) {
        in_pass = true;
        pass_started = now;
      }
      // Mid-pass with more to read: go on. Otherwise wait for a commit, a release or the poll.
      if (page_full && !limited) continue;
      _service->wait_for_work(_poll, out.stop_token());
    }
  }

 private:
  // Claims the item and sends it on; false when the node is stopping.
  bool hand_out(graph::source_output& out, storage::outbox_item item) {
    if (!_service->claim(item.key, std::chrono::steady_clock::now())) return true;
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
    auto item = json::parse(ctx.item.item, nullptr, false);
    if (!item.is_object()) {
      ESFLOW_ERROR("runner", "{}: outbox item {} is not JSON: left in place", _service->pipeline(),
                   ctx.item.work_id);
      out.fail(std::move(m), error::make(errc::internal, "corrupt outbox item"));
      out.finish();
      return;
    }
    ++ctx.attempts;
    if (ctx.item.kind == "effect")
      dispatch_effect(std::move(m), out, item);
    else
      dispatch_command(std::move(m), out, item);
  }

 private:
  void dispatch_effect(graph::message_ptr m, const graph::emitter& out, const json& item) {
    auto& ctx = context_of(*m);
    publish_and_end(std::move(m), out, _service->commands(), effect_command_request(ctx.item.tenant, item));
  }

  void dispatch_command(graph::message_ptr m, const graph::emitter& out, const json& item) {
    auto& ctx = context_of(*m);
    auto port = _service->local_commands();
    const auto tenant = ctx.item.tenant;
    if (auto a = item.find("answer"); a != item.end() && a->is_string()) {
      // Answered (rejected) before a crash or a failed publish: that answer again, never the command.
      publish_and_end(std::move(m), out, _service->events(),
                      result_request(tenant, item, a->get<std::string>()));
      return;
    }
    json command = {
        {"command_id", item.value("command_id", "")},
        {"aggregate_type", item.value("aggregate_type", "")},
        {"aggregate_id", item.value("aggregate_id", "")},
        {"payload", item.value("payload", json::object())},
        {"metadata",
         {{"saga", item.value("saga", "")}, {"correlation_id", item.value("correlation_id", "")}}}};
    if (!tenant.empty()) command["tenant_id"] = tenant;
    auto* raw = m.release();
    auto on_done = [this, raw, out, item](result<std::string> answer) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        on_answer(std::move(msg), out, item, std::move(answer));
      });
    };
    // In-process when this process runs the aggregate pipeline (esflow dev), else over NATS.
    if (port && port->is_open()) {
      port->submit({tenant, command.dump(), item.value("correlation_id", ""), {}}, std::move(on_done));
    } else if (auto* remote = _service->remote()) {
      const auto headers =
          _service->headers_for(tenant, item.value("correlation_id", ""), item.value("trace_id", ""));
      schemas::trace_context trace;
      for (const auto& [k, v] : headers) {
        if (k == "x-correlation-id") trace.correlation_id = v;
        if (k == "traceparent") trace.traceparent = v;
        if (k == "trace-id") trace.trace_id = v;
      }
      remote->submit(
          {tenant, item.value("aggregate_type", ""), item.value("aggregate_id", ""), command.dump(), trace},
          std::move(on_done));
    } else if (port) {
      port->submit({tenant, command.dump(), item.value("correlation_id", ""), {}}, std::move(on_done));
    } else {
      on_done(error::make(errc::unavailable, "no aggregate pipeline to send commands to"));
    }
  }

  void on_answer(graph::message_ptr m, const graph::emitter& out, const json& item,
                 result<std::string> answer) {
    auto& ctx = context_of(*m);
    const auto tenant = ctx.item.tenant;
    json body = {{"tenant_id", tenant},
                 {"saga", item.value("saga", "")},
                 {"correlation_id", item.value("correlation_id", "")},
                 {"command_id", item.value("command_id", "")},
                 {"aggregate_type", item.value("aggregate_type", "")},
                 {"aggregate_id", item.value("aggregate_id", "")},
                 {"command_type", item.value("payload", json::object()).value("type", "")},
                 {"trace_id", item.value("trace_id", "")}};
    if (answer.ok()) {
      auto r = json::parse(answer.value(), nullptr, false);
      body["status"] = "accepted";
      body["code"] = "";
      body["message"] = "";
      body["events"] = r.is_object() && r.contains("events") ? r["events"] : json::array();
    } else {
      const auto& e = answer.err();
      if (worth_retrying(e.code)) {
        out.fail(std::move(m), e);
        out.finish();
        return;
      }
      body["status"] = "rejected";
      body["code"] = e.code_text.empty() ? std::string(to_string(e.code)) : e.code_text;
      body["message"] = e.message;
      body["events"] = json::array();
    }
    auto req = result_request(tenant, item, body.dump());
    if (answer.ok()) {
      publish_and_end(std::move(m), out, _service->events(), std::move(req));
      return;
    }
    // A rejection stored nothing at the aggregate: the same command sent again (a crash between
    // this publish and the item's delete) could be accepted, while the saga acts on this
    // rejection. The answer is kept in the item first; a re-dispatch publishes it again.
    // (An acceptance needs no such care: the aggregate answers a re-sent id with the original.)
    auto answered = item;
    answered["answer"] = req.body;
    auto ws = _service->store().begin();
    _service->store().outbox().put(ws, tenant, ctx.item.kind, ctx.item.work_id, answered.dump());
    auto* raw = m.release();
    _service->committer().submit(std::move(ws), [this, raw, out, req = std::move(req)](status st) mutable {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        if (!st.ok()) {
          out.fail(std::move(msg), std::move(st).err());
          out.finish();
          return;
        }
        publish_and_end(std::move(msg), out, _service->events(), std::move(req));
      });
    });
  }

  // The command result of an item (docs/runner.md "The relay").
  storage::publish_request result_request(const std::string& tenant, const json& item,
                                          std::string body) const {
    storage::publish_request req;
    req.subject = nats::command_result_subject(tenant, item.value("saga", ""));
    req.msg_id = nats::tenant_token(tenant) + ":cmdresult:" + item.value("command_id", "");
    req.headers = _service->headers_for(tenant, item.value("correlation_id", ""), item.value("trace_id", ""));
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
      _service->release(ctx.item.key, true);
      if (auto* metrics = _service->metrics()) metrics->dispatched(false, 0);
      out.finish();
      return;
    }
    crash_point("outbox.dispatched");  // test hook (crash_point.h)
    auto ws = _service->store().begin();
    _service->store().outbox().erase(ws, ctx.item.tenant, ctx.item.kind, ctx.item.work_id);
    auto* raw = m.release();
    _service->committer().submit(std::move(ws), [this, raw, out](status st) {
      graph::run_guarded(out, graph::message_ptr(raw), [&](graph::message_ptr& msg) {
        auto& c = context_of(*msg);
        _service->release(c.item.key, !st.ok());
        if (auto* metrics = _service->metrics()) {
          const auto created = json::parse(c.item.item, nullptr, false);
          const auto ms = created.is_object() ? created.value("created_ms", std::uint64_t{0}) : 0;
          const auto now = _service->now_ms();
          metrics->dispatched(st.ok(), ms != 0 && now >= ms ? static_cast<double>(now - ms) / 1000.0 : -1.0);
        }
        if (!st.ok()) out.fail(std::move(msg), std::move(st).err());
        out.finish();
      });
    });
  }

 private:
  std::shared_ptr<runner_service> _service;
};

}  // namespace

storage::publish_request effect_command_request(const std::string& tenant, const nlohmann::json& item) {
  const auto command_id = item.value("command_id", "");
  json body = {{"tenant_id", tenant},
               {"command_id", command_id},
               {"effect", item.value("effect", "")},
               {"payload", item.value("payload", json::object())},
               {"metadata", {{"saga", item.value("saga", "")}}},
               {"correlation_id", item.value("correlation_id", "")},
               {"trace_id", item.value("trace_id", "")}};
  storage::publish_request req;
  req.subject = nats::effect_subject(tenant, item.value("effect", ""));
  req.msg_id = nats::tenant_token(tenant) + ":" + command_id;
  req.headers =
      runner_service::headers_for(tenant, item.value("correlation_id", ""), item.value("trace_id", ""));
  req.body = body.dump();
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
      graph::int_param("per_tenant", 64, "items of one tenant in flight at most", 1, 65536),
      graph::duration_param("poll", 200, "wait between scans when nothing wakes it"),
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
  return d;
}

}  // namespace esflow::runner
