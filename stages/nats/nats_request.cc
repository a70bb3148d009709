// nats.request: commands over core NATS request/reply (docs/contract.md "NATS
// subjects": tenant.<tenant>.command.<type>.<id>, queue group
// `esflow-aggregate`), answered with the CommandResult on the request's reply
// subject. See stages/nats/stages.h for the concurrency contract.
#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/ingest/source_door.h"
#include "stages/ingest_context.h"
#include "stages/nats/stages.h"
#include "stages/node_placement.h"
#include "transport/nats/headers.h"
#include "transport/nats/nats_link.h"
#include "transport/nats/subjects.h"
#include "transport/node_host.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stop_token>

namespace esflow::stages {
namespace {

// ---- the reply -------------------------------------------------------------------

// The `tenant-id` of a reply: the validated tenant once tenant.gate passed it,
// else the raw subject token when it has the tenant format, else `_` (an
// invalid token is never echoed as a tenant).
std::string reply_tenant(bool single_tenant, const std::string& validated, const std::string& raw) {
  if (single_tenant) return {};
  if (!validated.empty()) return validated;
  if (schemas::is_valid_tenant_id(raw)) return raw;
  return {};
}

class nats_reply final : public graph::reply_handle {
 public:
  nats_reply(std::shared_ptr<nats::nats_connection> conn, std::string reply_to, bool single_tenant,
             std::string raw_tenant, schemas::trace_context incoming)
      : _conn(std::move(conn)),
        _reply_to(std::move(reply_to)),
        _single_tenant(single_tenant),
        _raw_tenant(std::move(raw_tenant)),
        _incoming(std::move(incoming)) {}

  ~nats_reply() override {
    // The message died without an answer (a dropped message, a stage that
    // threw): never leave the requester waiting for its timeout.
    reject(error::make(errc::internal, "the command was dropped without an answer"));
  }

  void complete(const graph::message& m) override {
    if (_completed.exchange(true)) return;
    const auto* ctx = m.context_as<stages::ingest_context>();
    std::string body;
    if (m.error) {
      body = schemas::encode_command_result(schemas::make_rejection(*m.error));
    } else if (ctx && !ctx->answer.empty()) {
      body = ctx->answer;
    } else {
      body = schemas::encode_command_result(
          schemas::make_rejection(error::make(errc::internal, "the pipeline answered without a result")));
    }
    const bool traced = ctx && !ctx->trace.traceparent.empty();
    send(body, reply_tenant(_single_tenant, ctx ? ctx->tenant : std::string(), _raw_tenant),
         traced ? ctx->trace : _incoming);
  }

  // Answers at once without the pipeline (not admitted, malformed subject).
  void reject(const error& e) {
    if (_completed.exchange(true)) return;
    send(schemas::encode_command_result(schemas::make_rejection(e)),
         reply_tenant(_single_tenant, {}, _raw_tenant), _incoming);
  }

 private:
  void send(const std::string& body, const std::string& tenant, const schemas::trace_context& trace) {
    natsMsg* msg = nullptr;
    auto s = natsMsg_Create(&msg, _reply_to.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    if (s == NATS_OK) {
      if (auto h = nats::set_common_headers(msg, tenant, trace); !h.ok()) s = NATS_ERR;
    }
    // The connection uses SendAsap: the reply is written now, not after the flusher's 1 ms.
    if (s == NATS_OK) s = natsConnection_PublishMsg(_conn->raw(), msg);
    if (s != NATS_OK)
      ESFLOW_DEBUG("nats", "reply to {} not sent: {} (the requester times out and retries)", _reply_to,
                   natsStatus_GetText(s));
    natsMsg_Destroy(msg);
  }

  std::shared_ptr<nats::nats_connection> _conn;
  std::string _reply_to;
  bool _single_tenant;
  std::string _raw_tenant;
  schemas::trace_context _incoming;
  std::atomic<bool> _completed{false};
};

struct request_settings {
  std::shared_ptr<nats::nats_connection> conn;
  bool single_tenant = false;
  std::shared_ptr<source_door> door;
  stages::context_factory make_context;
  // /ready: false until run() subscribed, and again once it unsubscribed.
  std::shared_ptr<std::atomic<bool>> serving = std::make_shared<std::atomic<bool>>(false);
};

std::vector<std::string_view> split_subject(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// Runs on a nats.c delivery thread: must not block beyond try_put.
void handle_request(const request_settings& s, natsMsg* msg) {
  const char* reply_to = natsMsg_GetReply(msg);
  const std::string subject = natsMsg_GetSubject(msg);
  const auto tokens = split_subject(subject);

  auto ctx = stages::new_ingest_context(s.make_context);
  ctx->transport = "nats";
  ctx->incoming_traceparent = nats::get_header(msg, nats::header::traceparent).value_or("");
  ctx->incoming_correlation_id =
      nats::get_header(msg, nats::header::x_correlation_id)
          .value_or(nats::get_header(msg, nats::header::correlation_id).value_or(""));
  const bool well_formed = tokens.size() == 5 && tokens[0] == "tenant" && tokens[2] == "command";
  if (tokens.size() >= 2) {
    // `_` is the empty tenant (single-tenant mode); any other token goes to
    // tenant.gate raw, so an invalid one gets its invalid_tenant answer there.
    ctx->tenant_given = true;
    ctx->transport_tenant = tokens[1] == "_" ? std::string() : std::string(tokens[1]);
  }
  std::shared_ptr<nats_reply> reply;
  if (reply_to != nullptr && *reply_to != '\0')
    reply = std::make_shared<nats_reply>(
        s.conn, reply_to, s.single_tenant, ctx->transport_tenant,
        schemas::make_trace_context(ctx->incoming_traceparent, ctx->incoming_correlation_id));
  if (!well_formed) {
    if (reply)
      reply->reject(error::make(errc::invalid_command,
                                "subject '" + subject + "' is not tenant.<tenant>.command.<type>.<id>"));
    return;
  }
  ctx->subject_type = std::string(tokens[3]);
  ctx->subject_id = std::string(tokens[4]);

  auto m = graph::make_message();
  m->body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  m->context = std::move(ctx);
  m->reply = reply;
  const auto admitted = s.door->try_put(m);
  if (admitted == admission::admitted) return;
  // Not admitted: `m` is still ours; answer now (the handle's destructor stays quiet).
  if (reply)
    reply->reject(
        admitted == admission::full
            ? error::make(errc::unavailable, "the pipeline is full; retry later")
            : error::make(errc::unavailable, "the node is not serving commands (starting or draining)"));
}

void on_request(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  handle_request(*static_cast<const request_settings*>(closure), msg);
  natsMsg_Destroy(msg);
}

// ---- the stage -----------------------------------------------------------------------

class nats_request final : public graph::stage {
 public:
  nats_request(std::unique_ptr<request_settings> s, std::vector<std::string> subjects, std::string queue,
               std::shared_ptr<node_placement> placement)
      : _settings(std::move(s)),
        _subjects(std::move(subjects)),
        _queue(std::move(queue)),
        _placement(std::move(placement)) {}

  ~nats_request() override { unsubscribe_all(); }

  void run(graph::source_output& out) override {
    _settings->door->open(&out);
    // Subscribed only while running: before, a request would find no reply
    // (another replica of the queue group takes it); after, it goes elsewhere.
    std::uint64_t listener = 0;
    if (_placement) {
      // The hosted tenants' subjects, following every placement change.
      listener = _placement->on_hosted([this](const std::set<std::string>& hosted) {
        std::set<std::string> subjects;
        for (const auto& t : hosted) subjects.insert("tenant." + nats::tenant_token(t) + ".command.>");
        follow(subjects);
      });
    } else {
      follow(std::set<std::string>(_subjects.begin(), _subjects.end()));
    }
    _settings->serving->store(true);
    wait_for_stop(out);
    if (_placement) _placement->remove_listener(listener);
    _settings->serving->store(false);
    unsubscribe_all();
    _settings->door->close();
  }

 private:
  static void on_complete(void* counter) { static_cast<std::atomic<std::size_t>*>(counter)->fetch_add(1); }

  // Subscribes to the subjects not yet subscribed and drains those no longer
  // wanted (requests already delivered to them are still answered).
  void follow(const std::set<std::string>& wanted) {
    std::lock_guard lock(_subs_mu);
    if (_stopped) return;
    for (auto it = _active.begin(); it != _active.end();) {
      if (wanted.count(it->first)) {
        ++it;
        continue;
      }
      natsSubscription_Drain(it->second);
      it = _active.erase(it);
    }
    for (const auto& subject : wanted) {
      if (_active.count(subject)) continue;
      natsSubscription* sub = nullptr;
      auto st = natsConnection_QueueSubscribe(&sub, _settings->conn->raw(), subject.c_str(), _queue.c_str(),
                                              &on_request, _settings.get());
      if (st != NATS_OK) {
        ESFLOW_ERROR("nats", "nats.request: subscribing to {} failed: {}", subject, natsStatus_GetText(st));
        continue;
      }
      // Requests queue in the client while the pipeline is busy; beyond the
      // limit nats.c drops them (the requester times out and retries).
      natsSubscription_SetPendingLimits(sub, 65536, 64 << 20);
      // Called once the subscription is closed and its last callback returned.
      natsSubscription_SetOnCompleteCB(sub, &on_complete, &_completed);
      _all.push_back(sub);
      _active.emplace(subject, sub);
    }
    // The server knows the subscriptions before /ready (or a move) says so.
    natsConnection_FlushTimeout(_settings->conn->raw(), 2000);
    ESFLOW_INFO("nats", "nats.request serving {} subject(s), queue group {}", _active.size(), _queue);
  }

  void unsubscribe_all() {
    std::lock_guard lock(_subs_mu);
    _stopped = true;
    if (_all.empty()) return;
    for (auto& [subject, sub] : _active) natsSubscription_Unsubscribe(sub);
    _active.clear();
    // A callback may still run on a delivery thread: wait (bounded) until
    // every subscription reported its last one, before _settings can go.
    for (int i = 0; i < 5000 && _completed.load() < _all.size(); ++i) nats_Sleep(1);
    for (auto* sub : _all) natsSubscription_Destroy(sub);
    _all.clear();
  }

  std::unique_ptr<request_settings> _settings;
  std::vector<std::string> _subjects;
  std::string _queue;
  std::shared_ptr<node_placement> _placement;
  std::mutex _subs_mu;
  std::map<std::string, natsSubscription*> _active;  // guarded by _subs_mu
  std::vector<natsSubscription*> _all;               // every one made; guarded by _subs_mu
  bool _stopped = false;                             // guarded by _subs_mu
  std::atomic<std::size_t> _completed{0};
};

result<std::unique_ptr<graph::stage>> make_nats_request(const graph::stage_init& init) {
  const auto& p = init.spec.params;
  const bool single = init.pipeline.settings.str("tenancy") == "single";
  const auto where = init.spec.at.to_string() + ": stage '" + init.spec.name + "' (nats.request): ";
  std::vector<std::string> subjects;
  for (const auto& t : p.list("hosted")) {
    if (auto ok = schemas::validate_tenant(t, single); !ok.ok())
      return error::config(where + "hosted tenant '" + t + "': " + ok.err().message);
    subjects.push_back("tenant." + nats::tenant_token(t) + ".command.>");
  }
  if (subjects.empty()) subjects.emplace_back(nats::command_filter);
  auto link = nats::nats_link::for_url(init.services, init.pipeline.settings.str("nats_url"));
  // The loader names the file, line and stage of a factory error.
  if (!link.ok()) return std::move(link).err();
  auto s = std::make_unique<request_settings>();
  s->conn = link.value()->shared_connection();
  s->single_tenant = single;
  s->make_context = init.make_context;
  s->door = std::make_shared<source_door>();
  if (auto host = init.services.find<transport::node_host>("")) {
    host->add_ready_check("nats.request " + init.spec.name,
                          [serving = s->serving, name = init.spec.name]() -> transport::check_result {
                            if (serving->load()) return {true, name + " subscribed"};
                            return {false, "stage " + name + " (nats.request) is not subscribed"};
                          });
  }
  // With placement (a node id), the hosted tenants' subjects instead of `hosted`.
  auto placed = node_placement::of(init.pipeline, init.services);
  if (!placed.ok()) return std::move(placed).err();
  return std::unique_ptr<graph::stage>(
      new nats_request(std::move(s), std::move(subjects), p.str("queue"), std::move(placed).value()));
}

}  // namespace

graph::stage_descriptor nats_request_descriptor() {
  graph::stage_descriptor d;
  d.kind = "nats.request";
  d.description =
      "commands over core NATS request/reply on tenant.<t>.command.<type>.<id> (queue group), answered "
      "by the answering stage (aggregate.answer) on the reply subject";
  d.role = graph::stage_role::source;
  // run() only subscribes; nats.c's delivery thread admits the messages.
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::string_param("queue", std::string("esflow-aggregate"),
                          "queue group: replicas share the requests, each one answered once"),
      graph::list_param("hosted", std::vector<std::string>{},
                        "subscribe only these tenants' subjects (empty: tenant.*.command.>)"),
  };
  d.make = make_nats_request;
  return d;
}

}  // namespace esflow::stages
