// The gateway's stage kinds (docs/gateway.md, stages/gateway/README.md):
//
//   gateway.http   source: the edge routes on the node's HTTP server
//   gateway.auth   API key, tenant, right (deny by default)
//   gateway.route  deadline; the upstream call a request becomes
//   gateway.call   async: the call (NATS request, gRPC query or RunnerAdmin call,
//                  proxied HTTP read)
//   gateway.answer sink: the answer to the waiting request
//
// Concurrency contract:
// - gateway.http: handlers run on the HTTP server's fixed workers (never TBB
//   workers); each holds a command slot of the server (transport/README.md
//   "Serving limits") until its answer, so /health and /metrics keep workers.
//   They admit with try_put (a full pipeline answers 503 at once). run() only
//   opens and closes the door (stages/ingest/source_door.h).
// - gateway.auth, gateway.route, gateway.call, gateway.answer run inline
//   (graph/stage_descriptor.h runs_inline): auth, route and the start of the
//   call on the HTTP worker that took the request, the answer on the thread
//   that completed the call. No TBB task and no hop between them; each is
//   microseconds of CPU, any number in parallel; the key store's reload stats
//   a file at most once a second (api_keys.h).
// - gateway.call is async: process() starts the call and returns; the call
//   finishes on nats.c's inbox thread, gRPC's callback threads, the HTTP
//   pool's threads or the timer's (deadlines, retry backoffs). Nothing waits
//   on I/O inside a stage.
#include "common/errc.h"
#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "placement/placement_service.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "schemas/proto/query_service.grpc.pb.h"
#include "schemas/proto/runner_admin.grpc.pb.h"
#include "stages/gateway/gateway_context.h"
#include "stages/gateway/gateway_service.h"
#include "stages/gateway/register.h"
#include "stages/ingest/reply_waiter.h"
#include "stages/ingest/source_door.h"
#include "transport/http_server.h"
#include "transport/nats/subjects.h"

#include <grpcpp/client_context.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <random>

namespace esflow::gateway {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Beyond the request's deadline, how long an HTTP handler still waits for
// the pipeline's answer before answering 504 itself (gateway.call answers
// at the deadline; this only covers a message lost on the way).
constexpr auto k_answer_grace = 2000ms;
constexpr auto k_startup_wait = 5000ms;
// Bodies over max_body up to this size are read and dropped to keep the connection.
constexpr std::size_t k_discard_limit = 64 << 20;
// Attempts of one upstream call at most (the first included); docs/gateway.md "Retries".
constexpr int k_max_attempts = 5;
constexpr auto k_backoff_min = 25ms;
constexpr auto k_backoff_max = 1000ms;

// ---- answers ------------------------------------------------------------------------

struct request_headers {
  bool tenant_given = false;
  std::string tenant, request_id, traceparent, correlation_id;
  explicit request_headers(const httplib::Request& req)
      : tenant_given(req.has_header("x-tenant-id")),
        tenant(req.get_header_value("x-tenant-id")),
        request_id(req.get_header_value("x-request-id")),
        traceparent(req.get_header_value("traceparent")),
        correlation_id(req.get_header_value("x-correlation-id")) {}
};

struct answer {
  int status = 500;
  std::string body;
  schemas::trace_context trace;
  std::string tenant;  // the tenant-id header: a validated tenant, else "_"
};

answer rejection(const error& e) {
  return answer{http_status(e.code), schemas::encode_command_result(schemas::make_rejection(e)), {}, {}};
}

// docs/contract.md "Headers": x-correlation-id, traceparent, tenant-id,
// x-request-id echoed; Retry-After on every 503 (unavailable is retryable).
void send(httplib::Response& res, const request_headers& h, answer a) {
  if (a.trace.correlation_id.empty() || a.trace.traceparent.empty())
    a.trace = schemas::make_trace_context(h.traceparent, h.correlation_id);
  res.status = a.status;
  res.set_header("x-correlation-id", a.trace.correlation_id);
  res.set_header("traceparent", a.trace.traceparent);
  res.set_header("tenant-id", a.tenant.empty() ? "_" : a.tenant);
  if (!h.request_id.empty()) res.set_header("x-request-id", h.request_id);
  if (a.status == 503)
    res.set_header("Retry-After", std::to_string(transport::http_server::retry_after_seconds));
  if (a.status == 401) res.set_header("WWW-Authenticate", "Bearer");  // RFC 6750 section 3
  res.set_content(a.body, "application/json");
}

using waiter = stages::reply_waiter<answer>;

class gateway_reply final : public graph::reply_handle {
 public:
  explicit gateway_reply(std::shared_ptr<waiter> w) : _waiter(std::move(w)) {}
  ~gateway_reply() override {
    if (_completed.exchange(true)) return;
    // Dropped without an answer (a stage threw): never leave the client hanging.
    _waiter->deliver(rejection(error::make(errc::internal, "the request was dropped without an answer")));
  }
  void complete(const graph::message& m) override {
    if (_completed.exchange(true)) return;
    const auto* ctx = m.context_as<gateway_context>();
    answer a;
    if (m.error)
      a = rejection(*m.error);
    else if (ctx != nullptr && ctx->status != 0)
      a = answer{ctx->status, ctx->answer, {}, {}};
    else
      a = rejection(error::make(errc::internal, "the pipeline answered without a result"));
    if (ctx != nullptr) {
      a.trace = ctx->trace;
      if (ctx->tenant_valid) a.tenant = ctx->tenant;
    }
    _waiter->deliver(std::move(a));
  }

 private:
  std::shared_ptr<waiter> _waiter;
  std::atomic<bool> _completed{false};
};

// x-request-timeout: milliseconds, 1.., clamped to 30000 (docs/gateway.md).
result<std::chrono::milliseconds> parse_timeout(const std::optional<std::string>& raw, std::int64_t def) {
  if (!raw) return std::chrono::milliseconds(def);
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), v);
  if (raw->empty() || p != raw->data() + raw->size() ||
      (ec != std::errc() && ec != std::errc::result_out_of_range) || (ec == std::errc() && v <= 0))
    return error::make(errc::invalid_command,
                       "header x-request-timeout must be a positive number of milliseconds (at most " +
                           std::to_string(k_max_timeout_ms) + ")");
  if (ec == std::errc::result_out_of_range || v > k_max_timeout_ms) v = k_max_timeout_ms;
  return std::chrono::milliseconds(v);
}

// ---- gateway.http -----------------------------------------------------------------------

struct http_settings {
  std::size_t max_body = 1 << 20;
  std::int64_t default_timeout_ms = 5000;
  std::function<std::shared_ptr<graph::message_context>()> make_context;
};

std::shared_ptr<gateway_context> new_context(const http_settings& s) {
  auto base = s.make_context ? s.make_context() : nullptr;
  auto ctx = std::dynamic_pointer_cast<gateway_context>(base);
  return ctx ? ctx : std::make_shared<gateway_context>();
}

// A command's body, read here (not by httplib) so that one over max_body is
// answered with the contract's 413 body; nullopt when answered already.
std::optional<std::string> read_body(const http_settings& s, const httplib::Request& req,
                                     httplib::Response& res, const httplib::ContentReader& reader,
                                     const std::function<void(const error&)>& fail) {
  const auto too_large = [&] {
    res.set_header("Connection", "close");  // unread bytes would be parsed as the next request
    fail(error::make(errc::payload_too_large,
                     "request body over the limit of " + std::to_string(s.max_body) + " bytes"));
    return std::nullopt;
  };
  if (req.has_header("Content-Length")) {
    const auto text = req.get_header_value("Content-Length");
    std::size_t announced = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), announced);
    if (ec == std::errc() && p == text.data() + text.size() && announced > s.max_body) {
      // A client sends the whole body before it reads: a moderately large
      // one is read and dropped so it gets its 413 on a live connection
      // (as stages/ingest/http_commands.cc does); a huge one is not worth it.
      if (announced <= k_discard_limit && reader([](const char*, std::size_t) { return true; })) {
        fail(error::make(errc::payload_too_large,
                         "request body over the limit of " + std::to_string(s.max_body) + " bytes"));
        return std::nullopt;
      }
      return too_large();
    }
  }
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, std::size_t len) {
    if (body.size() + len > s.max_body) {
      over = true;
      return false;
    }
    body.append(data, len);
    return true;
  });
  if (over) return too_large();
  if (!ok) {
    res.set_header("Connection", "close");
    fail(error::make(errc::invalid_command, "the request body could not be read"));
    return std::nullopt;
  }
  return body;
}

void handle(stages::source_door& door, transport::http_server& server, const http_settings& s,
            route_kind route, const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader* reader, const std::string& runner_call = {}) {
  const request_headers h(req);
  auto fail = [&](const error& e) { send(res, h, rejection(e)); };
  // Each request holds this worker until its answer: bounded by the
  // server's command slots so the reserved workers stay free.
  const auto slot = server.try_command_slot();
  if (!slot)
    return fail(
        error::make(errc::unavailable, "too many requests waiting for upstream answers; retry later"));
  if (!door.wait_open(k_startup_wait))
    return fail(error::make(errc::unavailable, "the gateway is not serving (starting or draining)"));
  std::string body;
  if (reader != nullptr) {
    auto read = read_body(s, req, res, *reader, fail);
    if (!read) return;
    body = std::move(*read);
  }

  auto ctx = new_context(s);
  ctx->route = route;
  ctx->runner_call = runner_call;
  for (std::size_t i = 1; i < req.matches.size(); ++i) ctx->captures.push_back(req.matches[i]);
  for (const auto& [k, v] : req.params) ctx->params.emplace(k, v);
  ctx->authorization = req.get_header_value("Authorization");
  ctx->tenant_given = h.tenant_given;
  ctx->header_tenant = h.tenant;
  ctx->request_id = h.request_id;
  ctx->incoming_traceparent = h.traceparent;
  ctx->incoming_correlation_id = h.correlation_id;
  ctx->idempotency_key = req.get_header_value("Idempotency-Key");
  if (req.has_header("x-request-timeout")) ctx->request_timeout = req.get_header_value("x-request-timeout");
  ctx->received = clock::now();
  ctx->path = req.target;
  const auto timeout = parse_timeout(ctx->request_timeout, s.default_timeout_ms);
  const auto wait_for =
      (timeout.ok() ? timeout.value() : std::chrono::milliseconds(s.default_timeout_ms)) + k_answer_grace;

  auto m = graph::make_message();
  m->body = std::move(body);
  m->context = std::move(ctx);
  auto w = std::make_shared<waiter>();
  m->reply = std::make_shared<gateway_reply>(w);
  if (const auto a = door.try_put(m); a != stages::admission::admitted) {
    m->reply.reset();
    return fail(a == stages::admission::full
                    ? error::make(errc::unavailable, "the gateway is full; retry later")
                    : error::make(errc::unavailable, "the gateway is not serving (starting or draining)"));
  }
  auto a = w->wait_for(wait_for);  // a late completion is dropped
  if (!a)
    return fail(error::make(errc::deadline_exceeded,
                            "no answer within the request's deadline; a command may or may not have been "
                            "committed: retry with the same command id"));
  send(res, h, std::move(*a));
}

class http_source final : public graph::stage {
 public:
  // `own`: the gateway's server of its own (param `listen`), stopped with the stage.
  explicit http_source(std::shared_ptr<stages::source_door> door,
                       std::shared_ptr<transport::http_server> own = nullptr)
      : _door(std::move(door)), _own(std::move(own)) {}
  ~http_source() override {
    _door->close();
    if (_own) _own->stop();  // after the node drained: no request still waits for an answer
  }
  void run(graph::source_output& out) override {
    _door->open(&out);
    stages::wait_for_stop(out);
    _door->close();
  }

 private:
  std::shared_ptr<stages::source_door> _door;
  std::shared_ptr<transport::http_server> _own;
};

// The server of param `listen`: the gateway's own, so it can run beside an
// aggregate node, whose server serves the same paths (esflow dev,
// docs/gateway.md "Dev mode"). No admin routes on it (they stay on the
// process's server); bounded like it (transport/README.md "Serving limits").
result<std::shared_ptr<transport::http_server>> own_server(const graph::stage_init& init,
                                                           const std::string& listen) {
  if (!transport::parse_listen_address(listen))
    return error::make(
        errc::invalid_config,
        "stage '" + init.spec.name + "' (gateway.http): listen '" + listen + "' is not host:port",
        init.spec.at.to_string());
  return std::make_shared<transport::http_server>(listen);
}

result<std::unique_ptr<graph::stage>> make_http(const graph::stage_init& init) {
  const auto& p = init.spec.params;
  const auto listen = p.str("listen");
  std::shared_ptr<transport::http_server> own;
  if (!listen.empty()) {
    auto made = own_server(init, listen);
    if (!made.ok()) return std::move(made).err();
    own = std::move(made).value();
  }
  auto http = own ? own : init.services.find<transport::http_server>();
  if (!http)
    return error::make(errc::invalid_config,
                       "stage '" + init.spec.name +
                           "' (gateway.http) needs the node's HTTP server (run it with "
                           "`esflow run`)",
                       init.spec.at.to_string());
  auto svc = init.service_as<gateway_service>();
  if (!svc)
    return error::make(errc::invalid_config, "stage '" + init.spec.name + "' needs the gateway service",
                       init.spec.at.to_string());
  transport::http_limits limits;
  limits.workers = static_cast<std::size_t>(p.integer("server_threads"));
  limits.queue = static_cast<std::size_t>(p.integer("server_queue"));
  limits.reserved = static_cast<std::size_t>(p.integer("reserved_threads"));
  if (auto st = http->configure(limits); !st.ok())
    return error::make(errc::invalid_config, "stage '" + init.spec.name + "': " + st.err().message,
                       init.spec.at.to_string());
  auto s = std::make_shared<http_settings>();
  s->max_body = static_cast<std::size_t>(p.integer("max_body"));
  s->default_timeout_ms = svc->config().default_timeout_ms;
  s->make_context = init.make_context;
  auto door = std::make_shared<stages::source_door>();
  auto& server = http->routes();
  // Server-wide cap for routes that read whole bodies; ours reads itself and checks max_body.
  server.set_payload_max_length(s->max_body + std::size_t{64} * 1024);
  const auto route = [&](route_kind r) {
    return [door, s, r, srv = http.get()](const httplib::Request& req, httplib::Response& res) {
      handle(*door, *srv, *s, r, req, res, nullptr);
    };
  };
  server.Post("/v1/commands", [door, s, srv = http.get()](const httplib::Request& req, httplib::Response& res,
                                                          const httplib::ContentReader& reader) {
    handle(*door, *srv, *s, route_kind::command, req, res, &reader);
  });
  server.Get(R"(/v1/query/([^/]+))", route(route_kind::query));
  server.Get(R"(/v1/aggregates/([^/]+)/([^/]+)/events)", route(route_kind::aggregate_events));
  server.Get(R"(/v1/aggregates/([^/]+)/([^/]+))", route(route_kind::aggregate));
  server.Get(R"(/v1/sagas/([^/]+)/([^/]+))", route(route_kind::saga));
  // Runner admin (docs/gateway.md "Runner admin"): the call travels as the
  // route's capture, one route kind for the three.
  const auto runner = [&](std::string call) {
    return [door, s, call, srv = http.get()](const httplib::Request& req, httplib::Response& res) {
      handle(*door, *srv, *s, route_kind::runner_admin, req, res, nullptr, call);
    };
  };
  server.Post("/admin/runner/drain", runner("Drain"));
  server.Get("/admin/runner/status", runner("Status"));
  server.Post("/admin/runner/reload", runner("Reload"));
  // Bound now: an address it cannot listen on fails the node's build, naming it.
  if (own)
    if (auto started = own->start(); !started.ok())
      return error::make(errc::unavailable,
                         "stage '" + init.spec.name + "' (gateway.http): " + started.err().message,
                         init.spec.at.to_string());
  return std::unique_ptr<graph::stage>(new http_source(std::move(door), std::move(own)));
}

// ---- gateway.auth -----------------------------------------------------------------------

error no_context(const graph::emitter& out) {
  return error::make(errc::internal,
                     "stage '" + out.stage_name() + "' got a message without the gateway context");
}

class auth_stage final : public graph::stage {
 public:
  explicit auth_stage(std::shared_ptr<gateway_service> svc) : _svc(std::move(svc)) {}
  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto* ctx = m->context_as<gateway_context>();
    if (ctx == nullptr) return out.fail(std::move(m), no_context(out));
    ctx->trace = schemas::make_trace_context(ctx->incoming_traceparent, ctx->incoming_correlation_id);
    if (auto st = check(*ctx, m->body); !st.ok()) return out.fail(std::move(m), st.err());
    out.emit(std::move(m));
  }

 private:
  status check(gateway_context& ctx, const std::string& body) {
    // 1. Who: no or unknown key is 401, before anything about the request is read.
    auto grants = _svc->keys().authenticate(ctx.authorization);
    if (!grants.ok()) return grants.err();
    ctx.grants = std::move(grants).value();
    // Runner admin acts on a node, not on a tenant's data: any key holding
    // `admin` may call it, whatever its tenants (docs/gateway.md "Runner
    // admin"); x-tenant-id is not read, and the answer's tenant-id is "_".
    if (ctx.route == route_kind::runner_admin) return authorize_untenanted(*ctx.grants, right::admin);
    const bool single = _svc->single_tenant();
    // 2. Which tenant: the header's; for commands also the body's tenant_id.
    std::optional<std::string> body_tenant;
    if (ctx.route == route_kind::command) {
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("tenant_id")) {
        if (!j["tenant_id"].is_string())
          return error::make(errc::invalid_tenant, "the body's tenant_id must be a string");
        body_tenant = j["tenant_id"].get<std::string>();
      }
    }
    if (ctx.tenant_given)
      if (auto st = schemas::validate_tenant(ctx.header_tenant, single); !st.ok()) return st;
    if (body_tenant)
      if (auto st = schemas::validate_tenant(*body_tenant, single); !st.ok()) return st;
    if (ctx.tenant_given && body_tenant && *body_tenant != ctx.header_tenant)
      return error::make(errc::tenant_access_denied, "the body's tenant_id differs from header x-tenant-id");
    std::string tenant;
    if (ctx.tenant_given)
      tenant = ctx.header_tenant;
    else if (body_tenant)
      tenant = *body_tenant;
    else if (!single)
      return error::make(errc::invalid_tenant, "header x-tenant-id is required (multi-tenant gateway)");
    // 3. May this key act for it, and do this? Tenant first (authorize()).
    const auto r = ctx.route == route_kind::command ? right::commands : right::queries;
    if (auto st = authorize(*ctx.grants, tenant, r); !st.ok()) return st;
    ctx.tenant = std::move(tenant);
    ctx.tenant_valid = true;
    return {};
  }

  std::shared_ptr<gateway_service> _svc;
};

// ---- gateway.route ----------------------------------------------------------------------

bool is_simple_token(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (const char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' && c != ':')
      return false;
  return true;
}

class route_stage final : public graph::stage {
 public:
  explicit route_stage(std::shared_ptr<gateway_service> svc) : _svc(std::move(svc)) {}
  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto* ctx = m->context_as<gateway_context>();
    if (ctx == nullptr) return out.fail(std::move(m), no_context(out));
    if (auto st = plan(*ctx, m->body); !st.ok()) return out.fail(std::move(m), st.err());
    out.emit(std::move(m));
  }

 private:
  status plan(gateway_context& ctx, std::string& body) {
    auto timeout = parse_timeout(ctx.request_timeout, _svc->config().default_timeout_ms);
    if (!timeout.ok()) return timeout.err();
    ctx.timeout = timeout.value();
    ctx.deadline = ctx.received + ctx.timeout;
    switch (ctx.route) {
      case route_kind::command:
        return plan_command(ctx, body);
      case route_kind::query:
        // Empty upstream: the process's own views (gateway.call, local_read).
        if (_svc->config().query_upstream.empty() && _svc->local() != nullptr && _svc->local()->has_views())
          return {};
        if (_svc->config().query_upstream.empty())
          return error::make(errc::unavailable,
                             "this gateway has no query upstream (gateway.query_upstream)");
        ctx.upstream = _svc->config().query_upstream;
        return {};
      case route_kind::aggregate:
      case route_kind::aggregate_events:
        return plan_aggregate_read(ctx);
      case route_kind::saga:
        if (ctx.captures.size() != 2 || !is_simple_token(ctx.captures[0]) ||
            !is_simple_token(ctx.captures[1]))
          return error::make(errc::invalid_command, "a saga read is /v1/sagas/<saga>/<correlation id>");
        if (_svc->config().runner_http.empty())
          return error::make(errc::not_found,
                             "saga reads are not served by this gateway: no runner node is configured "
                             "(gateway.runner_http)");
        ctx.upstream = _svc->config().runner_http;
        return {};
      case route_kind::runner_admin:
        if (_svc->config().runner_grpc.empty())
          return error::make(errc::not_found,
                             "no runner configured: this gateway has no gateway.runner_grpc for "
                             "/admin/runner/*");
        ctx.upstream = _svc->config().runner_grpc;
        return {};
    }
    return error::make(errc::internal, "unknown route");
  }

  // The command's subject from its body (docs/contract.md "NATS subjects");
  // the node checks the rest (payload, the subject against the body).
  static status plan_command(gateway_context& ctx, std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object()) return error::make(errc::invalid_command, "the body is not a JSON object");
    if (!j.contains("aggregate_type") || !j["aggregate_type"].is_string())
      return error::make(errc::invalid_command, "aggregate_type is required (a string)");
    const auto type = j["aggregate_type"].get<std::string>();
    if (auto st = schemas::validate_aggregate_type(type); !st.ok()) return st;
    bool changed = false;
    std::string id;
    if (!j.contains("aggregate_id") || j["aggregate_id"].is_null()) {
      // The subject needs the id: generate it here (the node would) and forward it.
      id = schemas::new_uuid_v7();
      j["aggregate_id"] = id;
      changed = true;
    } else {
      if (!j["aggregate_id"].is_string())
        return error::make(errc::invalid_command, "aggregate_id must be a string");
      id = j["aggregate_id"].get<std::string>();
      if (auto st = schemas::validate_aggregate_id(id); !st.ok()) return st;
    }
    if (j.contains("command_id") && !j["command_id"].is_null()) {
      if (!j["command_id"].is_string())
        return error::make(errc::invalid_command, "command_id must be a string");
      ctx.command_id = j["command_id"].get<std::string>();
      if (auto st = schemas::validate_command_id(ctx.command_id); !st.ok()) return st;
    } else if (!ctx.idempotency_key.empty()) {
      // docs/contract.md: Idempotency-Key is the command id when the body has
      // none. NATS ingest reads no such header, so it goes into the body.
      if (auto st = schemas::validate_command_id(ctx.idempotency_key, "Idempotency-Key"); !st.ok()) return st;
      ctx.command_id = ctx.idempotency_key;
      j["command_id"] = ctx.command_id;
      changed = true;
    }
    if (changed) body = j.dump();
    ctx.subject = nats::command_subject(ctx.tenant, type, id);
    return {};
  }

  status plan_aggregate_read(gateway_context& ctx) {
    if (ctx.captures.size() != 2) return error::make(errc::invalid_command, "/v1/aggregates/<type>/<id>");
    if (auto st = schemas::validate_aggregate_type(ctx.captures[0]); !st.ok()) return st;
    if (auto st = schemas::validate_aggregate_id(ctx.captures[1]); !st.ok()) return st;
    if (_svc->local() != nullptr) return {};  // the process's aggregate node serves every tenant
    auto* placement = _svc->placement();
    if (placement == nullptr)
      return error::make(errc::unavailable,
                         "the gateway has no placement map (NATS KV unreachable at start)");
    const auto map = placement->current();
    const auto owner = map ? map->owner(ctx.tenant) : std::nullopt;
    if (!owner)
      return error::make(errc::unavailable, "no aggregate node hosts tenant '" + ctx.tenant + "' now");
    const auto* reg = map->registration(*owner);
    if (reg == nullptr || reg->http.empty())
      return error::make(errc::unavailable, "node '" + *owner + "' hosts tenant '" + ctx.tenant +
                                                "' but registered no HTTP address");
    ctx.upstream = reg->http;
    return {};
  }

  std::shared_ptr<gateway_service> _svc;
};

// ---- gateway.call -----------------------------------------------------------------------

// One request's call, shared by the callbacks of its attempts.
struct call_state {
  std::shared_ptr<gateway_service> svc;
  graph::emitter out;
  graph::message_ptr m;
  gateway_context* ctx = nullptr;  // in m
  bool acquired = false;
};
using call_ptr = std::shared_ptr<call_state>;

void finish(const call_ptr& c, std::optional<error> e) {
  if (c->acquired) {
    c->svc->release();
    c->acquired = false;
  }
  auto m = std::move(c->m);
  if (!m) return;
  graph::run_guarded(c->out, std::move(m), [&](graph::message_ptr& msg) {
    if (e)
      c->out.fail(std::move(msg), std::move(*e));
    else
      c->out.emit(std::move(msg));
    c->out.finish();
  });
}

void answer_ok(const call_ptr& c, int status, std::string body) {
  c->ctx->status = status;
  c->ctx->answer = std::move(body);
  finish(c, std::nullopt);
}

// The wait before attempt n+1 (n >= 1): exponential, full jitter in its
// upper half, so callers retrying together spread out.
std::chrono::milliseconds backoff(int attempts) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto cap = k_backoff_min * (1LL << std::min(attempts - 1, 10));
  cap = std::min<std::chrono::milliseconds>(cap, k_backoff_max);
  std::uniform_int_distribution<std::int64_t> d(cap.count() / 2, cap.count());
  return std::chrono::milliseconds(d(rng));
}

// Schedules `again` when another attempt fits before the deadline.
bool retry_later(const call_ptr& c, std::string_view upstream, std::function<void(const call_ptr&)> again) {
  if (c->ctx->attempts >= k_max_attempts) return false;
  const auto at = clock::now() + backoff(c->ctx->attempts);
  if (at >= c->ctx->deadline) return false;
  c->svc->metrics().retry(upstream);
  return c->svc->timer().schedule(at, [c, again = std::move(again)] { again(c); }) != 0;
}

double seconds_since(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

error deadline_error(const gateway_context& ctx, std::string_view what) {
  return error::make(
      errc::deadline_exceeded,
      std::string(what) + " did not answer within " + std::to_string(ctx.timeout.count()) + " ms" +
          (ctx.route == route_kind::command ? "; the command may or may not have been committed: "
                                              "retry with the same command id"
                                            : ""));
}

// Commands: NATS request/reply; retried only with a command id (idempotent).
void command_attempt(const call_ptr& c) {
  auto& ctx = *c->ctx;
  ++ctx.attempts;
  nats_request r;
  r.subject = ctx.subject;
  r.body = c->m->body;
  r.tenant = ctx.tenant;
  r.trace = ctx.trace;
  if (!ctx.request_id.empty()) r.headers.emplace_back("x-request-id", ctx.request_id);
  const auto started = clock::now();
  c->svc->commands().request(r, ctx.deadline, [c, started](result<nats_reply> rep) {
    auto& cx = *c->ctx;
    c->svc->metrics().upstream("nats", seconds_since(started));
    const bool may_retry = !cx.command_id.empty();
    if (!rep.ok()) {
      auto e = std::move(rep).err();
      if (e.code == errc::deadline_exceeded) return finish(c, deadline_error(cx, "the aggregate node"));
      if (e.code == errc::unavailable && may_retry && retry_later(c, "nats", command_attempt)) return;
      return finish(c, std::move(e));
    }
    if (rep->no_responders) {
      if (may_retry && retry_later(c, "nats", command_attempt)) return;
      return finish(c, error::make(errc::unavailable, "no aggregate node answers " + cx.subject +
                                                          " (no responders); retry later"));
    }
    auto j = nlohmann::json::parse(rep->body, nullptr, false);
    if (!j.is_object() || !j.contains("status") || !j["status"].is_string())
      return finish(c,
                    error::make(errc::internal, "the answer on " + cx.subject + " is not a CommandResult"));
    if (j["status"] == "accepted") return answer_ok(c, 200, std::move(rep->body));
    const auto code = j.value("code", std::string("internal"));
    if (code == "unavailable" && may_retry && retry_later(c, "nats", command_attempt)) return;
    // A node that no longer hosts the tenant (a move in progress: its old
    // subscription still delivered) refused it before anything ran, so the
    // resend is safe even without a command id; NATS routes it to the new owner.
    if (code == "tenant_not_hosted" && retry_later(c, "nats", command_attempt)) return;
    // The node's rejection, relayed as it is, with its contract status.
    answer_ok(c, http_status(errc_from_wire(code)), std::move(rep->body));
  });
}

// The projection's HTTP answer (docs/contract.md "Projection node": Query),
// from the gRPC response.
std::string query_json(const esflow::v1::QueryResponse& r) {
  std::string out = "{\"rows\":[";
  for (int i = 0; i < r.rows_size(); ++i) {
    const auto& row = r.rows(i);
    if (i) out += ',';
    out += "{\"key\":";
    schemas::append_json_string(out, row.key());
    out += ",\"version\":" + std::to_string(row.version()) + ",\"row\":";
    out += row.row_json().empty() ? std::string("null") : row.row_json();
    out += '}';
  }
  out += "],\"next_cursor\":";
  if (r.has_next_cursor())
    schemas::append_json_string(out, r.next_cursor());
  else
    out += "null";
  out += ",\"position\":" + std::to_string(r.position()) + "}";
  return out;
}

std::optional<std::string> param(const gateway_context& ctx, const char* name) {
  const auto it = ctx.params.find(name);
  if (it == ctx.params.end()) return std::nullopt;
  return it->second;
}

result<esflow::v1::QueryRequest> query_request(const gateway_context& ctx) {
  esflow::v1::QueryRequest q;
  q.set_view(ctx.captures.empty() ? std::string() : ctx.captures[0]);
  if (auto v = param(ctx, "filter")) q.set_filter(*v);
  if (auto v = param(ctx, "cursor")) q.set_cursor(*v);
  if (auto v = param(ctx, "order_by")) q.set_order_by(*v);
  const auto number = [&](const char* name) -> result<std::optional<std::uint64_t>> {
    auto v = param(ctx, name);
    if (!v) return std::optional<std::uint64_t>();
    std::uint64_t n = 0;
    const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (v->empty() || ec != std::errc() || p != v->data() + v->size())
      return error::make(errc::invalid_query,
                         std::string("query parameter '") + name + "' must be a non-negative integer");
    return std::optional<std::uint64_t>(n);
  };
  for (const auto* name : {"limit", "min_position", "wait_ms"}) {
    auto n = number(name);
    if (!n.ok()) return std::move(n).err();
    if (!n.value()) continue;
    const std::string_view which = name;
    if (which == "limit") q.set_limit(*n.value());
    if (which == "min_position") q.set_min_position(*n.value());
    if (which == "wait_ms") q.set_wait_ms(*n.value());
  }
  return q;
}

struct query_call {
  grpc::ClientContext context;
  esflow::v1::QueryRequest request;
  esflow::v1::QueryResponse response;
  std::unique_ptr<esflow::v1::QueryService::Stub> stub;
};

// The rejection a failed gRPC call carries: its trailing `esflow-code` when
// present (transport/grpc_status.h), else the gRPC status's meaning.
// `upstream` names the upstream in messages ("the query upstream").
error grpc_error(grpc::ClientContext& context, const grpc::Status& s, const gateway_context& ctx,
                 const std::string& upstream) {
  const auto& trailers = context.GetServerTrailingMetadata();
  if (const auto it = trailers.find("esflow-code"); it != trailers.end()) {
    const std::string code(it->second.data(), it->second.size());
    auto e = error::make(errc_from_wire(code), s.error_message().empty() ? code : s.error_message());
    if (e.code == errc::domain_rejection) e.code_text = code;
    return e;
  }
  const auto who = upstream + " " + ctx.upstream;
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return deadline_error(ctx, who);
    case grpc::StatusCode::UNAVAILABLE:
      return error::make(errc::unavailable, who + " is unavailable: " + s.error_message());
    case grpc::StatusCode::INVALID_ARGUMENT:
      return error::make(ctx.route == route_kind::query ? errc::invalid_query : errc::invalid_command,
                         s.error_message());
    case grpc::StatusCode::NOT_FOUND:
      return error::make(errc::not_found, s.error_message());
    case grpc::StatusCode::PERMISSION_DENIED:
      return error::make(errc::tenant_access_denied, s.error_message());
    default:
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED && ctx.route == route_kind::runner_admin)
        return error::make(errc::not_found, who + " does not serve RunnerAdmin (a runner node with gRPC?)");
      return error::make(errc::internal, who + " failed: " + s.error_message());
  }
}

void add_call_metadata(grpc::ClientContext& context, const gateway_context& ctx) {
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(ctx.deadline - clock::now()));
  if (!ctx.tenant.empty()) context.AddMetadata("x-tenant-id", ctx.tenant);
  context.AddMetadata("x-correlation-id", ctx.trace.correlation_id);
  context.AddMetadata("traceparent", ctx.trace.traceparent);
  if (!ctx.request_id.empty()) context.AddMetadata("x-request-id", ctx.request_id);
}

// Queries: QueryService.Query over the pooled channel; retried on UNAVAILABLE.
void query_attempt(const call_ptr& c) {
  auto& ctx = *c->ctx;
  ++ctx.attempts;
  auto q = query_request(ctx);
  if (!q.ok()) return finish(c, std::move(q).err());
  auto g = std::make_shared<query_call>();
  g->request = std::move(q).value();
  add_call_metadata(g->context, ctx);
  g->stub = esflow::v1::QueryService::NewStub(c->svc->channels().get(ctx.upstream));
  const auto started = clock::now();
  auto* raw = g.get();
  raw->stub->async()->Query(
      &raw->context, &raw->request, &raw->response, [c, g, started](const grpc::Status& s) {
        c->svc->metrics().upstream("grpc", seconds_since(started));
        if (s.ok()) return answer_ok(c, 200, query_json(g->response));
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE && retry_later(c, "grpc", query_attempt)) return;
        finish(c, grpc_error(g->context, s, *c->ctx, "the query upstream"));
      });
}

// Runner admin: one RunnerAdmin call; the answer is JSON (docs/gateway.md "Runner admin").
struct runner_call {
  grpc::ClientContext context;
  esflow::v1::DrainRequest drain_in;
  esflow::v1::DrainResponse drain_out;
  esflow::v1::StatusRequest status_in;
  esflow::v1::StatusResponse status_out;
  esflow::v1::ReloadRequest reload_in;
  esflow::v1::ReloadResponse reload_out;
  std::unique_ptr<esflow::v1::RunnerAdmin::Stub> stub;
};

// status_json as a JSON value (an object from a runner; kept as text if not JSON).
nlohmann::json status_value(const std::string& text) {
  if (text.empty()) return nullptr;
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

std::string runner_answer(const gateway_context& ctx, const runner_call& g) {
  if (ctx.runner_call == "Drain")
    return nlohmann::json{{"draining", g.drain_out.draining()},
                          {"already_draining", g.drain_out.already_draining()},
                          {"runner", status_value(g.drain_out.status_json())}}
        .dump();
  if (ctx.runner_call == "Reload")
    return nlohmann::json{{"reloaded", g.reload_out.reloaded()}, {"reason", g.reload_out.reason()}}.dump();
  // Status: the runner's status_json as it is (it holds the typed fields too).
  auto j = status_value(g.status_out.status_json());
  if (!j.is_object())
    j = nlohmann::json{{"mode", g.status_out.mode()},
                       {"ready", g.status_out.ready()},
                       {"draining", g.status_out.draining()},
                       {"outbox_depth", g.status_out.outbox_depth()},
                       {"quarantine_count", g.status_out.quarantine_count()}};
  return j.dump();
}

// Drain, Status and Reload are idempotent: retried on UNAVAILABLE like reads.
void runner_attempt(const call_ptr& c) {
  auto& ctx = *c->ctx;
  ++ctx.attempts;
  auto g = std::make_shared<runner_call>();
  add_call_metadata(g->context, ctx);
  g->stub = esflow::v1::RunnerAdmin::NewStub(c->svc->channels().get(ctx.upstream));
  const auto started = clock::now();
  auto done = [c, g, started](const grpc::Status& s) {
    c->svc->metrics().upstream("grpc", seconds_since(started));
    auto& cx = *c->ctx;
    // 202 for a drain, as the node's own POST /admin/drain: it goes on after the answer.
    if (s.ok()) return answer_ok(c, cx.runner_call == "Drain" ? 202 : 200, runner_answer(cx, *g));
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE && retry_later(c, "grpc", runner_attempt)) return;
    finish(c, grpc_error(g->context, s, cx, "the runner"));
  };
  auto* raw = g.get();
  auto* async = raw->stub->async();
  if (ctx.runner_call == "Drain")
    async->Drain(&raw->context, &raw->drain_in, &raw->drain_out, std::move(done));
  else if (ctx.runner_call == "Reload")
    async->Reload(&raw->context, &raw->reload_in, &raw->reload_out, std::move(done));
  else
    async->Status(&raw->context, &raw->status_in, &raw->status_out, std::move(done));
}

// Aggregate and saga reads: proxied to the node's HTTP route on the pool
// (httplib's client blocks); retried on a failed connection or a 503.
void http_read(const call_ptr& c) {
  const bool queued = c->svc->http_pool().try_submit([c] {
    auto& ctx = *c->ctx;
    std::string host;
    int port = 0;
    if (!split_host_port(ctx.upstream, host, port))
      return finish(c, error::make(errc::unavailable, "bad upstream address '" + ctx.upstream + "'"));
    bool redirected = false;
    for (;;) {
      ++ctx.attempts;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - clock::now());
      if (left.count() <= 0) return finish(c, deadline_error(ctx, "the node at " + ctx.upstream));
      httplib::Client cli(host, port);
      cli.set_connection_timeout(left);
      cli.set_read_timeout(left);
      cli.set_write_timeout(left);
      httplib::Headers headers{{"x-correlation-id", ctx.trace.correlation_id},
                               {"traceparent", ctx.trace.traceparent}};
      if (!ctx.tenant.empty()) headers.emplace("x-tenant-id", ctx.tenant);
      if (!ctx.request_id.empty()) headers.emplace("x-request-id", ctx.request_id);
      const auto started = clock::now();
      auto r = cli.Get(ctx.path, headers);
      c->svc->metrics().upstream("http", seconds_since(started));
      // Saga replicas: the runner that does not own the tenant names the one that does (its
      // registered address); asked once, so two runners cannot bounce a read between them.
      if (r && r->status == 421 && ctx.route == route_kind::saga && !redirected) {
        const auto j = nlohmann::json::parse(r->body, nullptr, false);
        const auto owner = j.is_object() ? j.value("http", std::string()) : std::string();
        std::string owner_host;
        int owner_port = 0;
        if (split_host_port(owner, owner_host, owner_port)) {
          redirected = true;
          ctx.upstream = owner;
          host = owner_host;
          port = owner_port;
          c->svc->metrics().retry("http");
          continue;
        }
      }
      const bool retry = !r || r->status == 503;
      if (!retry) return answer_ok(c, r->status, std::move(r->body));
      const auto wait = backoff(ctx.attempts);
      if (ctx.attempts >= k_max_attempts || clock::now() + wait >= ctx.deadline) {
        if (r) return answer_ok(c, r->status, std::move(r->body));
        if (clock::now() >= ctx.deadline)
          return finish(c, deadline_error(ctx, "the node at " + ctx.upstream));
        return finish(c, error::make(errc::unavailable, "the node at " + ctx.upstream + " did not answer (" +
                                                            httplib::to_string(r.error()) + ")"));
      }
      c->svc->metrics().retry("http");
      std::this_thread::sleep_for(wait);  // a pool thread, never a TBB worker
    }
  });
  if (!queued) finish(c, error::make(errc::unavailable, "too many proxied reads waiting; retry later"));
}

// ---- in-process upstreams (no nats_url: esflow dev, docs/gateway.md "Dev mode")

// Commands through the local aggregate pipeline: the answers, retries and
// deadline of the NATS path (command_attempt). The port answers once, on a
// TBB worker of the aggregate pipeline or at once on a refusal; the deadline
// runs on the timer, and whichever comes first answers.
void local_command_attempt(const call_ptr& c) {
  auto& ctx = *c->ctx;
  ++ctx.attempts;
  auto once = std::make_shared<std::atomic<bool>>(false);
  const auto timer = c->svc->timer().schedule(ctx.deadline, [c, once] {
    if (!once->exchange(true)) finish(c, deadline_error(*c->ctx, "the aggregate pipeline"));
  });
  const auto started = clock::now();
  c->svc->local()->command(
      ctx.tenant, c->m->body, ctx.trace.correlation_id, ctx.trace.traceparent,
      [c, once, timer, started](result<std::string> rep) {
        if (once->exchange(true)) return;
        c->svc->timer().cancel(timer);
        auto& cx = *c->ctx;
        c->svc->metrics().upstream("local", seconds_since(started));
        const bool may_retry = !cx.command_id.empty();
        if (!rep.ok()) {
          auto e = std::move(rep).err();
          if (e.code == errc::unavailable && may_retry && retry_later(c, "local", local_command_attempt))
            return;
          return finish(c, std::move(e));
        }
        auto body = std::move(rep).value();
        auto j = nlohmann::json::parse(body, nullptr, false);
        if (!j.is_object() || !j.contains("status") || !j["status"].is_string())
          return finish(
              c, error::make(errc::internal, "the aggregate pipeline's answer is not a CommandResult"));
        if (j["status"] == "accepted") return answer_ok(c, 200, std::move(body));
        const auto code = j.value("code", std::string("internal"));
        if (code == "unavailable" && may_retry && retry_later(c, "local", local_command_attempt)) return;
        answer_ok(c, http_status(errc_from_wire(code)), std::move(body));
      });
}

// Aggregate reads and queries on the process's nodes: they read RocksDB
// (a query may wait for min_position), so on the pool, never a TBB worker;
// retried on unavailable like the proxied reads.
void local_read(const call_ptr& c) {
  const bool queued = c->svc->http_pool().try_submit([c] {
    auto& ctx = *c->ctx;
    auto* local = c->svc->local();
    for (;;) {
      ++ctx.attempts;
      if (clock::now() >= ctx.deadline) return finish(c, deadline_error(ctx, "the in-process node"));
      const auto started = clock::now();
      const bool query = ctx.route == route_kind::query;
      auto r = ctx.captures.size() < (query ? 1U : 2U)
                   ? result<local_upstreams::read_answer>(error::make(errc::internal, "no path captures"))
               : query ? local->query(ctx.tenant, ctx.captures[0], ctx.params)
                       : local->aggregate(ctx.tenant, ctx.captures[0], ctx.captures[1],
                                          ctx.route == route_kind::aggregate_events, ctx.params);
      c->svc->metrics().upstream("local", seconds_since(started));
      if (r.ok()) return answer_ok(c, r->status, std::move(r->body));
      auto e = std::move(r).err();
      const auto wait = backoff(ctx.attempts);
      if (e.code != errc::unavailable || ctx.attempts >= k_max_attempts ||
          clock::now() + wait >= ctx.deadline)
        return finish(c, std::move(e));
      c->svc->metrics().retry("local");
      std::this_thread::sleep_for(wait);  // a pool thread, never a TBB worker
    }
  });
  if (!queued) finish(c, error::make(errc::unavailable, "too many in-process reads waiting; retry later"));
}

class call_stage final : public graph::stage {
 public:
  explicit call_stage(std::shared_ptr<gateway_service> svc) : _svc(std::move(svc)) {}
  void process(graph::message_ptr m, const graph::emitter& out) override {
    auto c = std::make_shared<call_state>(call_state{_svc, out, nullptr, nullptr, false});
    c->ctx = m->context_as<gateway_context>();
    c->m = std::move(m);
    if (c->ctx == nullptr)
      return finish(c, error::make(errc::internal, "gateway.call got a message without the gateway context"));
    if (!_svc->try_acquire())
      return finish(c, error::make(errc::unavailable, "too many upstream calls in flight at the gateway (" +
                                                          std::to_string(_svc->config().max_in_flight) +
                                                          "); retry later"));
    c->acquired = true;
    const bool local = _svc->local() != nullptr;
    switch (c->ctx->route) {
      case route_kind::command:
        return local ? local_command_attempt(c) : command_attempt(c);
      case route_kind::query:
        return local && c->ctx->upstream.empty() ? local_read(c) : query_attempt(c);
      case route_kind::aggregate:
      case route_kind::aggregate_events:
        return local ? local_read(c) : http_read(c);
      case route_kind::runner_admin:
        return runner_attempt(c);
      default:
        return http_read(c);
    }
  }

 private:
  std::shared_ptr<gateway_service> _svc;
};

// ---- gateway.answer ---------------------------------------------------------------------

class answer_stage final : public graph::stage {
 public:
  explicit answer_stage(std::shared_ptr<gateway_service> svc) : _svc(std::move(svc)) {}
  void process(graph::message_ptr m, const graph::emitter&) override {
    const auto* ctx = m->context_as<gateway_context>();
    std::string outcome = "ok";
    if (m->error)
      outcome = m->error->code == errc::domain_rejection ? "domain_rejection"
                                                         : std::string(to_string(m->error->code));
    else if (ctx != nullptr && ctx->status >= 300)
      outcome = std::string(to_string(errc_from_wire(code_of(ctx->answer))));
    if (outcome.empty()) outcome = "domain_rejection";
    if (ctx != nullptr) _svc->metrics().request(ctx->route, outcome);
    if (m->reply) m->reply->complete(*m);
  }

 private:
  static std::string code_of(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return j.is_object() ? j.value("code", std::string("internal")) : std::string("internal");
  }
  std::shared_ptr<gateway_service> _svc;
};

template <class S>
graph::stage_descriptor stage_of(std::string kind, std::string description) {
  graph::stage_descriptor d;
  d.kind = std::move(kind);
  d.description = std::move(description);
  d.node_kind = "gateway";
  d.mutates_context = true;
  // Microseconds of work that never wait (a call only starts its I/O): run on
  // the HTTP worker or the completion thread that has the request at hand.
  d.runs_inline = true;
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto svc = init.service_as<gateway_service>();
    if (!svc)
      return error::make(errc::invalid_config, "stage '" + init.spec.name + "' needs the gateway service",
                         init.spec.at.to_string());
    return std::unique_ptr<graph::stage>(new S(std::move(svc)));
  };
  return d;
}

}  // namespace

graph::stage_descriptor http_descriptor() {
  graph::stage_descriptor d;
  d.kind = "gateway.http";
  d.description =
      "the edge's HTTP routes: POST /v1/commands, GET /v1/query/<view>, /v1/aggregates/..., /v1/sagas/..., "
      "/admin/runner/{drain,status,reload}";
  d.role = graph::stage_role::source;
  d.node_kind = "gateway";
  d.default_concurrency = graph::concurrency::serial();  // run() only opens the door
  d.params = {
      graph::size_param("max_body", 1 << 20, "largest command body; larger is 413 payload_too_large"),
      graph::string_param("listen", "",
                          "host:port of a server of the gateway's own (esflow dev: beside an aggregate "
                          "node); empty: the node's HTTP server"),
      graph::int_param("server_threads", 64,
                       "HTTP worker threads of the gateway's server (each waiting request holds one)", 4,
                       4096),
      graph::int_param("server_queue", 256,
                       "accepted connections that may wait for a worker; beyond, 503 unavailable", 0, 65536),
      graph::int_param("reserved_threads", 4,
                       "workers requests never take: /health, /metrics stay answerable", 1, 4095),
  };
  d.make = make_http;
  return d;
}

graph::stage_descriptor auth_descriptor() {
  return stage_of<auth_stage>(
      "gateway.auth", "deny by default: Bearer API key (401), tenant (400/403), right (403 forbidden)");
}

graph::stage_descriptor route_descriptor() {
  return stage_of<route_stage>("gateway.route",
                               "the request's deadline (x-request-timeout) and upstream: NATS subject, query "
                               "upstream, the tenant's node, the runner (HTTP reads, gRPC admin)");
}

graph::stage_descriptor call_descriptor() {
  auto d =
      stage_of<call_stage>("gateway.call",
                           "the upstream call, asynchronous: NATS request/reply, gRPC Query or RunnerAdmin, "
                           "proxied HTTP read; retries and the deadline");
  d.async = true;
  return d;
}

graph::stage_descriptor answer_descriptor() {
  auto d = stage_of<answer_stage>("gateway.answer",
                                  "answers the waiting HTTP request (upstream answer or rejection)");
  d.role = graph::stage_role::sink;
  d.output_ports = {};
  return d;
}

}  // namespace esflow::gateway
