// http.commands: POST /v1/commands into the aggregate pipeline, and the two
// aggregate reads. See http_commands.h for the concurrency contract and the
// reply protocol.
#include "stages/ingest/http_commands.h"

#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/ingest/aggregate_reads.h"
#include "stages/ingest/reply_waiter.h"
#include "stages/ingest/source_door.h"
#include "stages/ingest_context.h"
#include "stages/node_env.h"
#include "transport/http_server.h"

#include <httplib.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <stop_token>
#include <sys/socket.h>

namespace esflow::stages {
namespace {

// Bodies over max_body up to this size are read and dropped to keep the connection.
constexpr std::size_t k_discard_limit = 64 << 20;

// ---- answers ----------------------------------------------------------------

struct answer {
  int status = 500;
  std::string body;
  schemas::trace_context trace;
  std::string tenant;  // value of the `tenant-id` header
};

// Request headers the answer depends on, read once per request.
struct request_info {
  bool tenant_given = false;
  std::string tenant;  // raw x-tenant-id
  std::string request_id;
  std::string traceparent;
  std::string correlation_id;
  std::string idempotency_key;

  explicit request_info(const httplib::Request& req)
      : tenant_given(req.has_header("x-tenant-id")),
        tenant(req.get_header_value("x-tenant-id")),
        request_id(req.get_header_value("x-request-id")),
        traceparent(req.get_header_value("traceparent")),
        correlation_id(req.get_header_value("x-correlation-id")),
        idempotency_key(req.get_header_value("Idempotency-Key")) {}
};

// The `tenant-id` response header. Choice (documented in stages/ingest/README.md):
// single-tenant mode: `_`; multi: the validated tenant when the pipeline got that
// far, else the raw x-tenant-id when it has the tenant format, else `_` (an invalid
// tenant is never echoed, so no header carries unvalidated bytes as a tenant).
std::string tenant_header(bool single_tenant, const std::string& validated, const std::string& raw) {
  if (single_tenant) return "_";
  if (!validated.empty()) return validated;
  if (schemas::is_valid_tenant_id(raw)) return raw;
  return "_";
}

std::string rejection_body(const error& e) {
  return schemas::encode_command_result(schemas::make_rejection(e));
}

answer rejection(const error& e) {
  answer a;
  a.status = esflow::http_status(e.code);
  a.body = rejection_body(e);
  return a;
}

void send(httplib::Response& res, const request_info& info, answer a) {
  res.status = a.status;
  if (a.trace.correlation_id.empty() || a.trace.traceparent.empty())
    a.trace = schemas::make_trace_context(info.traceparent, info.correlation_id);
  res.set_header("x-correlation-id", a.trace.correlation_id);
  res.set_header("traceparent", a.trace.traceparent);
  res.set_header("tenant-id", a.tenant.empty() ? "_" : a.tenant);
  if (!info.request_id.empty()) res.set_header("x-request-id", info.request_id);
  // Every 503 here is `unavailable` (retryable): docs/contract.md "Rejection codes".
  if (a.status == 503)
    res.set_header("Retry-After", std::to_string(transport::http_server::retry_after_seconds));
  res.set_content(std::move(a.body), "application/json");
}

// ---- the reply handle ----------------------------------------------------------

// What the waiting handler thread and the pipeline share.
using waiter = reply_waiter<answer>;

class http_reply final : public graph::reply_handle {
 public:
  http_reply(std::shared_ptr<waiter> w, bool single_tenant, std::string raw_tenant)
      : _waiter(std::move(w)), _single_tenant(single_tenant), _raw_tenant(std::move(raw_tenant)) {}

  ~http_reply() override {
    if (_completed.exchange(true)) return;
    // The message died without an answer (dropped on an unconnected port, a
    // stage that threw): never leave the client hanging.
    auto a = rejection(error::make(errc::internal, "the command was dropped without an answer"));
    a.tenant = tenant_header(_single_tenant, {}, _raw_tenant);
    _waiter->deliver(std::move(a));
  }

  void complete(const graph::message& m) override {
    if (_completed.exchange(true)) return;
    _waiter->deliver(encode(m));
  }

 private:
  answer encode(const graph::message& m) const {
    answer a;
    const auto* ctx = m.context_as<stages::ingest_context>();
    if (m.error) {
      a = rejection(*m.error);
    } else if (ctx && !ctx->answer.empty()) {
      a.status = 200;
      a.body = ctx->answer;
    } else {
      a = rejection(error::make(errc::internal, "the pipeline answered without a result"));
    }
    if (ctx) a.trace = ctx->trace;
    a.tenant = tenant_header(_single_tenant, ctx ? ctx->tenant : std::string(), _raw_tenant);
    return a;
  }

  std::shared_ptr<waiter> _waiter;
  bool _single_tenant;
  std::string _raw_tenant;
  std::atomic<bool> _completed{false};
};

// ---- the door between handlers and the running source ------------------------------

// The source door (source_door.h) plus the aggregate reads, which the
// handlers see only while the door is open.
class ingest_door : public source_door {
 public:
  void open(graph::source_output* out, std::shared_ptr<aggregate_reads> reads) {
    std::atomic_store(&_reads, std::move(reads));
    source_door::open(out);
  }
  void close() {
    source_door::close();
    std::atomic_store(&_reads, std::shared_ptr<aggregate_reads>());
  }
  std::shared_ptr<aggregate_reads> reads() const { return is_open() ? std::atomic_load(&_reads) : nullptr; }

 private:
  std::shared_ptr<aggregate_reads> _reads;  // atomic_load/atomic_store only
};

constexpr std::chrono::milliseconds k_startup_wait{5000};

struct settings {
  std::size_t max_body = 1 << 20;
  std::chrono::milliseconds timeout{30000};
  bool single_tenant = false;
  stages::context_factory make_context;
};

error not_running() {
  return error::make(errc::unavailable, "the node is not serving commands (starting or draining)");
}

// ---- POST /v1/commands ---------------------------------------------------------

void handle_command(ingest_door& door, transport::http_server& server, const settings& s,
                    const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& read_body) {
  const request_info info(req);
  auto fail = [&](const error& e) {
    auto a = rejection(e);
    a.tenant = tenant_header(s.single_tenant, {}, info.tenant);
    send(res, info, std::move(a));
  };
  const auto too_large = [&](bool body_consumed) {
    // Unread body bytes would be parsed as the next request: end the connection.
    if (!body_consumed) res.set_header("Connection", "close");
    fail(error::make(errc::payload_too_large,
                     "request body over the limit of " + std::to_string(s.max_body) + " bytes"));
  };
  // This handler holds its worker until the pipeline answers: without a slot
  // a flood of commands would take every worker from /health and /metrics.
  const auto slot = server.try_command_slot();
  if (!slot) {
    res.set_header("Connection", "close");  // the body stays unread
    return fail(error::make(errc::unavailable,
                            "too many HTTP commands waiting for answers (" +
                                std::to_string(server.stats().command_limit) +
                                " at once; the other workers stay free for reads and admin); retry later"));
  }
  if (!door.wait_open(k_startup_wait)) return fail(not_running());

  // Refuse on the announced length before reading a byte of the body.
  std::size_t announced = 0;
  if (req.has_header("Content-Length")) {
    const auto text = req.get_header_value("Content-Length");
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), announced);
    if (ec != std::errc() || p != text.data() + text.size()) {
      if (ec == std::errc::result_out_of_range) return too_large(false);
      res.set_header("Connection", "close");
      return fail(error::make(errc::invalid_command, "malformed Content-Length"));
    }
    if (announced > s.max_body) {
      // Never kept: a moderately large body is read and dropped so the client
      // (which sends it all before reading) gets its 413 on a live connection;
      // a huge one is not worth reading.
      if (announced > k_discard_limit) return too_large(false);
      const bool drained = read_body([](const char*, std::size_t) { return true; });
      return too_large(drained);
    }
  }
  std::string body;
  body.reserve(announced);
  bool over = false;
  const bool read_ok = read_body([&](const char* data, std::size_t len) {
    if (body.size() + len > s.max_body) {
      over = true;
      return false;  // stop reading (chunked bodies carry no length up front)
    }
    body.append(data, len);
    return true;
  });
  if (over) return too_large(false);
  if (!read_ok) {
    res.set_header("Connection", "close");
    return fail(error::make(errc::invalid_command, "the request body could not be read"));
  }

  auto m = graph::make_message();
  m->body = std::move(body);
  auto ctx = stages::new_ingest_context(s.make_context);
  ctx->transport = "http";
  ctx->tenant_given = info.tenant_given;
  ctx->transport_tenant = info.tenant;
  ctx->idempotency_key = info.idempotency_key;
  ctx->request_id = info.request_id;
  ctx->incoming_traceparent = info.traceparent;
  ctx->incoming_correlation_id = info.correlation_id;
  m->context = std::move(ctx);
  auto w = std::make_shared<waiter>();
  m->reply = std::make_shared<http_reply>(w, s.single_tenant, info.tenant);
  if (const auto a = door.try_put(m); a != admission::admitted) {
    // Not admitted: `m` is still ours; detach the reply so its destructor stays quiet.
    m->reply.reset();
    return fail(a == admission::full ? error::make(errc::unavailable, "the pipeline is full; retry later")
                                     : not_running());
  }

  auto a = w->wait_for(s.timeout);  // a late completion is dropped
  if (!a)
    return fail(error::make(errc::unavailable, "no answer within " + std::to_string(s.timeout.count()) +
                                                   " ms; the command may or may not have been committed"));
  send(res, info, std::move(*a));
}

// ---- reads ------------------------------------------------------------------------

// Tenant, then type and id: the validation order of docs/contract.md (10.4 "Answers").
status validate_read(const settings& s, const request_info& info, const std::string& type,
                     const std::string& id) {
  if (!s.single_tenant && !info.tenant_given)
    return error::make(errc::invalid_tenant, "header x-tenant-id is required (multi-tenant node)");
  if (auto t = schemas::validate_tenant(info.tenant, s.single_tenant); !t.ok()) return t;
  if (auto t = schemas::validate_aggregate_type(type); !t.ok()) return t;
  return schemas::validate_aggregate_id(id);
}

void handle_read(ingest_door& door, const settings& s, const httplib::Request& req, httplib::Response& res,
                 bool events) {
  const request_info info(req);
  const std::string type = req.matches[1];
  const std::string id = req.matches[2];
  const auto valid = validate_read(s, info, type, id);
  answer a;
  const std::string tenant = s.single_tenant ? std::string() : info.tenant;
  a.tenant = tenant_header(s.single_tenant, valid.ok() ? tenant : std::string(), info.tenant);
  auto fail = [&](const error& e) {
    const auto t = std::move(a.tenant);
    a = rejection(e);
    a.tenant = t;
    send(res, info, std::move(a));
  };
  if (!valid.ok()) return fail(valid.err());
  auto reads = door.wait_open(k_startup_wait) ? door.reads() : nullptr;
  if (!reads) return fail(not_running());

  const auto query = [&](const char* name) {
    return req.has_param(name) ? std::optional(req.get_param_value(name)) : std::nullopt;
  };
  auto body = read_aggregate_json(*reads, tenant, type, id, events, query("after"), query("limit"));
  if (!body.ok()) return fail(body.err());
  a.body = std::move(body).value();
  a.status = 200;
  send(res, info, std::move(a));
}

// ---- the stage ------------------------------------------------------------------------

class http_commands final : public graph::stage {
 public:
  http_commands(std::shared_ptr<ingest_door> door, esflow::service_registry& services, std::string data_dir)
      : _door(std::move(door)), _services(services), _data_dir(std::move(data_dir)) {}
  ~http_commands() override { _door->close(); }

  void run(graph::source_output& out) override {
    // Every stage of the node is built by now: the aggregate stages' service exists.
    _door->open(&out, find_aggregate_reads(_services, _data_dir));
    wait_for_stop(out);
    _door->close();
  }

 private:
  std::shared_ptr<ingest_door> _door;
  esflow::service_registry& _services;
  std::string _data_dir;
};

// Routes are server-wide: two stages may not claim one path.
struct claimed_paths {
  std::mutex mu;
  std::vector<std::string> paths;
};

result<std::unique_ptr<graph::stage>> make_http_commands(const graph::stage_init& init) {
  const auto& p = init.spec.params;
  auto http = init.services.find<transport::http_server>();
  if (!http)
    return error::make(errc::invalid_config,
                       "stage '" + init.spec.name +
                           "' (http.commands) needs the node's HTTP server (run it with "
                           "`esflow run` / `esflow dev`)",
                       init.spec.at.to_string());
  const auto path = p.str("path");
  if (path.empty() || path.front() != '/')
    return error::make(errc::invalid_config, "stage '" + init.spec.name + "': path must start with '/'",
                       init.spec.at.to_string());
  auto claims = init.services.get_or_create<claimed_paths>("http.commands.paths", [] {
    return result<std::shared_ptr<claimed_paths>>(std::make_shared<claimed_paths>());
  });
  if (!claims.ok()) return std::move(claims).err();
  {
    std::lock_guard lock((*claims)->mu);
    for (const auto& c : (*claims)->paths)
      if (c == path)
        return error::make(
            errc::invalid_config,
            "stage '" + init.spec.name + "': another http.commands stage already serves " + path,
            init.spec.at.to_string());
    (*claims)->paths.push_back(path);
  }

  auto s = std::make_shared<settings>();
  s->max_body = static_cast<std::size_t>(p.integer("max_body"));
  s->timeout = std::chrono::milliseconds(p.integer("timeout"));
  s->single_tenant = init.pipeline.settings.str("tenancy") == "single";
  s->make_context = init.make_context;
  auto door = std::make_shared<ingest_door>();

  // Handlers block until the pipeline answers: the server's bounds
  // (transport/README.md "Serving limits") keep that from taking every worker.
  transport::http_limits limits;
  limits.workers = static_cast<std::size_t>(p.integer("server_threads"));
  limits.queue = static_cast<std::size_t>(p.integer("server_queue"));
  limits.reserved = static_cast<std::size_t>(p.integer("reserved_threads"));
  if (auto st = http->configure(limits); !st.ok())
    return error::make(errc::invalid_config, "stage '" + init.spec.name + "': " + st.err().message,
                       init.spec.at.to_string());

  auto& server = http->routes();
  // Server-wide cap for routes that read whole bodies; ours reads itself and checks max_body.
  server.set_payload_max_length(s->max_body + std::size_t{64} * 1024);
  // The server outlives its routes: a plain pointer, no cycle through them.
  server.Post(path, [door, s, srv = http.get()](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
    handle_command(*door, *srv, *s, req, res, reader);
  });
  if (p.boolean("reads")) {
    server.Get(R"(/v1/aggregates/([^/]+)/([^/]+)/events)",
               [door, s](const httplib::Request& req, httplib::Response& res) {
                 handle_read(*door, *s, req, res, true);
               });
    server.Get(R"(/v1/aggregates/([^/]+)/([^/]+))",
               [door, s](const httplib::Request& req, httplib::Response& res) {
                 handle_read(*door, *s, req, res, false);
               });
  }
  return std::unique_ptr<graph::stage>(
      new http_commands(std::move(door), init.services, stages::data_dir_of(init.pipeline)));
}

}  // namespace

graph::stage_descriptor http_commands_descriptor() {
  graph::stage_descriptor d;
  d.kind = "http.commands";
  d.description =
      "POST /v1/commands into the pipeline (answered by its answering stage) and the aggregate reads";
  d.role = graph::stage_role::source;
  // run() only opens the door; httplib's threads admit the messages.
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::size_param("max_body", 1 << 20, "largest command body; larger is 413 payload_too_large"),
      graph::duration_param("timeout", 30000,
                            "how long a request waits for its answer before 503 unavailable"),
      graph::string_param("path", std::string("/v1/commands"), "the POST route of commands"),
      graph::bool_param("reads", true, "also serve GET /v1/aggregates/<type>/<id>[/events]"),
      graph::int_param("server_threads", 64,
                       "HTTP worker threads of the node's server (each waiting command holds one)", 4, 4096),
      graph::int_param("server_queue", 256,
                       "accepted connections that may wait for a worker; beyond, 503 unavailable", 0, 65536),
      graph::int_param("reserved_threads", 4,
                       "workers commands never take: /health, /metrics, admin and reads stay answerable", 1,
                       4095),
  };
  d.make = make_http_commands;
  return d;
}

}  // namespace esflow::stages
