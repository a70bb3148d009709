// The shipped pipelines/gateway.yaml served in-process (cli::serve_nodes, as
// `esflow run` wires it) on a real nats-server, in front of fakes: a plain
// nats.c responder on tenant.*.command.> that counts what reaches it, and a
// gRPC QueryService (docs/gateway.md, docs/contract.md "Gateway").
#include "placement/placement_service.h"
#include "schemas/ids.h"
#include "schemas/proto/query_service.grpc.pb.h"
#include "schemas/proto/runner_admin.grpc.pb.h"
#include "stages/gateway/api_keys.h"
#include "tests/stages/nats/node_env.h"
#include "transport/nats/nats_link.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>

namespace esflow::gateway {
namespace {

using nats::testing::client;
using nats::testing::json;
using nats::testing::nats_server_fixture;
using nats::testing::temp_path;
using namespace std::chrono_literals;

// What the fake aggregate node saw of one command.
struct seen_command {
  std::string subject, body;
  std::map<std::string, std::string> headers;
};

// A plain nats.c responder on tenant.*.command.>: counts every request and
// answers with what `answer` returns for it (nullopt: never answers).
class fake_aggregate {
 public:
  using answer_fn = std::function<std::optional<std::string>(int n, const seen_command&)>;

  fake_aggregate(const std::string& url, answer_fn answer) : _answer(std::move(answer)) {
    EXPECT_EQ(natsConnection_ConnectTo(&_nc, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_Subscribe(&_sub, _nc, "tenant.*.command.>", &fake_aggregate::on_msg, this),
              NATS_OK);
    natsConnection_Flush(_nc);
  }
  ~fake_aggregate() {
    natsSubscription_Unsubscribe(_sub);
    natsSubscription_Destroy(_sub);
    natsConnection_Destroy(_nc);
  }
  int count() const { return _count.load(); }
  std::vector<seen_command> seen() const {
    std::lock_guard lock(_mu);
    return _seen;
  }

 private:
  static void on_msg(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<fake_aggregate*>(closure);
    seen_command s;
    s.subject = natsMsg_GetSubject(msg);
    s.body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    const char** keys = nullptr;
    int count = 0;
    if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i) {
        const char* v = nullptr;
        if (natsMsgHeader_Get(msg, keys[i], &v) == NATS_OK && v != nullptr) s.headers[keys[i]] = v;
      }
      free(static_cast<void*>(keys));
    }
    const int n = ++self->_count;
    {
      std::lock_guard lock(self->_mu);
      self->_seen.push_back(s);
    }
    if (auto body = self->_answer(n, s); body && natsMsg_GetReply(msg) != nullptr)
      natsConnection_PublishString(nc, natsMsg_GetReply(msg), body->c_str());
    natsMsg_Destroy(msg);
  }

  answer_fn _answer;
  natsConnection* _nc = nullptr;
  natsSubscription* _sub = nullptr;
  std::atomic<int> _count{0};
  mutable std::mutex _mu;
  std::vector<seen_command> _seen;
};

// A fake projection node's QueryService: answers one row, or for the view
// "broken" an invalid_query rejection as the projection sends it
// (transport/grpc_status.h: status + trailing esflow-code).
class fake_query_service final : public esflow::v1::QueryService::Service {
 public:
  grpc::Status Query(grpc::ServerContext* ctx, const esflow::v1::QueryRequest* req,
                     esflow::v1::QueryResponse* resp) override {
    {
      std::lock_guard lock(mu);
      const auto& md = ctx->client_metadata();
      const auto get = [&](const char* k) {
        auto it = md.find(k);
        return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
      };
      tenants.push_back(get("x-tenant-id"));
      correlations.push_back(get("x-correlation-id"));
      requests.push_back(*req);
    }
    if (req->view() == "broken") {
      ctx->AddTrailingMetadata("esflow-code", "invalid_query");
      return {grpc::StatusCode::INVALID_ARGUMENT, "filter: unexpected ')' at column 9"};
    }
    if (req->view() == "flaky" && ++flaky_calls == 1) return {grpc::StatusCode::UNAVAILABLE, "starting"};
    auto* row = resp->add_rows();
    row->set_key("acc-1");
    row->set_version(2);
    row->set_row_json(R"({"balance":100,"open":true})");
    resp->set_position(7);
    return grpc::Status::OK;
  }
  std::mutex mu;
  std::vector<std::string> tenants, correlations;
  std::vector<esflow::v1::QueryRequest> requests;
  std::atomic<int> flaky_calls{0};
};

// A fake runner node's RunnerAdmin: counts the calls, answers Status with a
// status_json, Drain as accepted, Reload as the runner does in this build
// (FAILED_PRECONDITION, esflow-code reload_unsupported).
class fake_runner_admin final : public esflow::v1::RunnerAdmin::Service {
 public:
  grpc::Status Drain(grpc::ServerContext* ctx, const esflow::v1::DrainRequest*,
                     esflow::v1::DrainResponse* out) override {
    seen(*ctx, "Drain");
    out->set_draining(true);
    out->set_already_draining(++drains > 1);
    out->set_status_json(R"({"mode":"saga","draining":true,"outbox_depth":0})");
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext* ctx, const esflow::v1::StatusRequest*,
                      esflow::v1::StatusResponse* out) override {
    seen(*ctx, "Status");
    out->set_mode("saga");
    out->set_outbox_depth(3);
    out->set_status_json(
        R"({"mode":"saga","ready":true,"draining":false,"outbox_depth":3,"quarantine_count":0,)"
        R"("pipelines":{"runner":{"sagas":[{"name":"Transfer"}]}}})");
    return grpc::Status::OK;
  }
  grpc::Status Reload(grpc::ServerContext* ctx, const esflow::v1::ReloadRequest*,
                      esflow::v1::ReloadResponse*) override {
    seen(*ctx, "Reload");
    ctx->AddTrailingMetadata("esflow-code", "reload_unsupported");
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "reload of runner programs needs a rolling restart in this build"};
  }
  void seen(grpc::ServerContext& ctx, const std::string& call) {
    ++calls;
    std::lock_guard lock(mu);
    names.push_back(call);
    const auto& md = ctx.client_metadata();
    auto it = md.find("x-correlation-id");
    correlations.push_back(it == md.end() ? std::string()
                                          : std::string(it->second.data(), it->second.size()));
  }
  std::atomic<int> calls{0}, drains{0};
  std::mutex mu;
  std::vector<std::string> names, correlations;
};

// A fake node's HTTP reads (an aggregate node's and a runner's): answers
// every read with what it saw, so the test can check the proxied request.
class fake_http_node {
 public:
  fake_http_node() {
    const auto seen = [this](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json j{{"path", req.path},
                       {"target", req.target},
                       {"tenant", req.get_header_value("x-tenant-id")},
                       {"correlation", req.get_header_value("x-correlation-id")}};
      ++requests;
      std::unique_lock lock(_mu);
      if (req.path.find("moved") != std::string::npos && !_owner.empty()) {
        // A saga replica that does not own the tenant: 421 naming the owner's address.
        res.status = 421;
        res.set_content(nlohmann::json{{"status", "rejected"},
                                       {"code", "tenant_not_hosted"},
                                       {"message", "hosted elsewhere"},
                                       {"retryable", false},
                                       {"node", "runner-b"},
                                       {"http", _owner}}
                            .dump(),
                        "application/json");
        return;
      }
      lock.unlock();
      if (req.path.find("missing") != std::string::npos) {
        res.status = 404;
        res.set_content(R"({"status":"rejected","code":"not_found","message":"no events","retryable":false})",
                        "application/json");
        return;
      }
      res.set_content(j.dump(), "application/json");
    };
    _server.Get(R"(/v1/aggregates/.*)", seen);
    _server.Get(R"(/v1/sagas/.*)", seen);
    port = _server.bind_to_any_port("127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    for (int i = 0; i < 200 && !_server.is_running(); ++i) std::this_thread::sleep_for(5ms);
  }
  ~fake_http_node() {
    _server.stop();
    _thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  // Where a read of a `moved` path is sent (421 with this "http"); empty: served here.
  void set_owner(std::string http) {
    std::lock_guard lock(_mu);
    _owner = std::move(http);
  }
  int port = 0;
  std::atomic<int> requests{0};

 private:
  std::mutex _mu;
  std::string _owner;  // guarded by _mu
  httplib::Server _server;
  std::thread _thread;
};

std::string accepted_body(const std::string& id) {
  return R"({"status":"accepted","aggregate_id":")" + id +
         R"(","version":1,"duplicate":false,"events":[],"position":3})";
}
std::string rejected_body(const std::string& code, bool retryable = false) {
  return R"({"status":"rejected","code":")" + code + R"(","message":"because )" + code + R"(","retryable":)" +
         (retryable ? "true" : "false") + "}";
}

class gateway_node : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(_nats.start()) << "nats-server did not start";
    const auto keys = (_dir.path() / "keys.jsonl").string();
    _key_acme = must_key(keys, {"acme"}, {"commands", "queries"}, "acme app");
    _key_both = must_key(keys, {"acme", "globex"}, {"commands", "queries"}, "both");
    _key_reader = must_key(keys, {"acme"}, {"queries"}, "acme reader");
    _key_writer = must_key(keys, {"acme"}, {"commands"}, "acme writer");
    _key_admin = must_key(keys, {"acme"}, {"admin"}, "acme ops");
    ::setenv("ESFLOW_KEYS_FILE", keys.c_str(), 1);

    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &_grpc_port);
    b.RegisterService(&_queries);
    b.RegisterService(&_runner_admin);
    _grpc = b.BuildAndStart();
    ASSERT_TRUE(_grpc);
    ASSERT_GT(_grpc_port, 0);
    const auto upstream = "127.0.0.1:" + std::to_string(_grpc_port);
    ::setenv("ESFLOW_QUERY_UPSTREAM", upstream.c_str(), 1);
    if (_with_runner)
      ::setenv("ESFLOW_RUNNER_HTTP", _reads.address().c_str(), 1);
    else
      ::unsetenv("ESFLOW_RUNNER_HTTP");
    if (!_runner_grpc.empty())
      ::setenv("ESFLOW_RUNNER_GRPC", _runner_grpc.c_str(), 1);
    else if (_with_runner_admin)
      ::setenv("ESFLOW_RUNNER_GRPC", upstream.c_str(), 1);
    else
      ::unsetenv("ESFLOW_RUNNER_GRPC");

    auto file = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/gateway.yaml";
    if (_max_in_flight > 0)
      file = _dir.write("gateway.yaml",
                        nats::testing::replace_all(nats::testing::read_text(file), "max_in_flight: 1024",
                                                   "max_in_flight: " + std::to_string(_max_in_flight)));
    _served = nats::testing::serve({file}, (_dir.path() / "data").string(), _nats.url());
    ASSERT_TRUE(_served);
    _url = cli::served_url(*_served);
  }
  void TearDown() override {
    _served.reset();
    if (_grpc) _grpc->Shutdown(std::chrono::system_clock::now() + 1s);
  }

  static std::string must_key(const std::string& file, std::vector<std::string> tenants,
                              std::vector<std::string> rights, const std::string& label) {
    auto k = append_api_key(file, tenants, rights, label);
    EXPECT_TRUE(k.ok()) << k.err().to_string();
    return k.ok() ? k.value() : std::string();
  }

 public:
  struct response {
    int status = 0;
    json body;
    std::string text;
    httplib::Headers headers;
    std::string header(const std::string& k) const {
      auto it = headers.find(k);
      return it == headers.end() ? std::string() : it->second;
    }
  };

 protected:
  response call(const std::string& method, const std::string& path, const std::string& body,
                httplib::Headers headers) {
    httplib::Client cli(_url);
    cli.set_read_timeout(40s);
    auto r = method == "POST" ? cli.Post(path, headers, body, "application/json") : cli.Get(path, headers);
    response out;
    if (!r) {
      ADD_FAILURE() << method << " " << path << ": " << httplib::to_string(r.error());
      return out;
    }
    out.status = r->status;
    out.text = r->body;
    out.body = json::parse(r->body, nullptr, false);
    out.headers = r->headers;
    return out;
  }
  response command(const std::string& body, httplib::Headers headers) {
    return call("POST", "/v1/commands", body, std::move(headers));
  }
  static httplib::Headers as(const std::string& key, const std::string& tenant) {
    httplib::Headers h{{"x-tenant-id", tenant}};
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return h;
  }

  bool _with_runner = false;
  bool _with_runner_admin = false;  // gateway.runner_grpc: the fake RunnerAdmin
  std::string _runner_grpc;         // else, when set: gateway.runner_grpc (a real runner)
  int _max_in_flight = 0;           // > 0: the shipped file with another gateway.max_in_flight
  fake_http_node _reads;
  nats_server_fixture _nats;
  temp_path _dir;
  std::string _key_acme, _key_both, _key_reader, _key_writer, _key_admin;
  fake_query_service _queries;
  fake_runner_admin _runner_admin;
  std::unique_ptr<grpc::Server> _grpc;
  int _grpc_port = 0;
  std::shared_ptr<cli::served_nodes> _served;
  std::string _url;
};

const std::string k_deposit =
    R"({"aggregate_type":"Account","aggregate_id":"acc-1","payload":{"type":"deposit","amount":5}})";

void expect_rejected(const gateway_node::response& r, int status, const std::string& code,
                     const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.text;
  ASSERT_TRUE(r.body.is_object()) << what << ": " << r.text;
  EXPECT_EQ(r.body.value("status", ""), "rejected") << what;
  EXPECT_EQ(r.body.value("code", ""), code) << what << ": " << r.text;
  EXPECT_FALSE(r.body.value("message", "").empty()) << what;
  EXPECT_EQ(r.body.value("retryable", true), code == "unavailable" || code == "version_conflict") << what;
  EXPECT_FALSE(r.header("x-correlation-id").empty()) << what;
  EXPECT_FALSE(r.header("traceparent").empty()) << what;
  EXPECT_FALSE(r.header("tenant-id").empty()) << what;
}

TEST_F(gateway_node, denies_without_key_wrong_tenant_or_right_and_nothing_reaches_the_aggregate) {
  fake_aggregate agg(_nats.url(), [](int, const seen_command&) { return accepted_body("acc-1"); });

  expect_rejected(command(k_deposit, as("", "acme")), 401, "unauthenticated", "no key");
  expect_rejected(command(k_deposit, as("esk_not_a_key_of_this_gateway", "acme")), 401, "unauthenticated",
                  "unknown key");
  auto basic = as("", "acme");
  basic.emplace("Authorization", "Basic dXNlcjpwYXNz");
  expect_rejected(command(k_deposit, basic), 401, "unauthenticated", "another scheme");
  expect_rejected(command(k_deposit, as(_key_acme, "globex")), 403, "tenant_access_denied", "wrong tenant");
  expect_rejected(command(k_deposit, as(_key_acme, "no such tenant")), 400, "invalid_tenant", "bad tenant");
  expect_rejected(command(k_deposit, {{"Authorization", "Bearer " + _key_acme}}), 400, "invalid_tenant",
                  "no tenant at all");
  // Spoofed header: a tenant the key lacks, while the body names the key's own.
  const std::string acme_body =
      R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"acc-1","payload":{"type":"deposit","amount":5}})";
  expect_rejected(command(acme_body, as(_key_acme, "globex")), 403, "tenant_access_denied", "spoofed header");
  // Both tenants allowed, but the body's differs from the header's.
  auto mismatch = command(acme_body, as(_key_both, "globex"));
  expect_rejected(mismatch, 403, "tenant_access_denied", "body differs from header");
  EXPECT_NE(mismatch.body.value("message", "").find("differs"), std::string::npos) << mismatch.text;
  // Rights: a reader may not send commands, a writer may not query.
  auto forbidden = command(k_deposit, as(_key_reader, "acme"));
  expect_rejected(forbidden, 403, "forbidden", "reader sends a command");
  EXPECT_NE(forbidden.body.value("message", "").find("commands"), std::string::npos) << forbidden.text;
  expect_rejected(call("GET", "/v1/query/accounts", "", as(_key_writer, "acme")), 403, "forbidden",
                  "writer queries");
  expect_rejected(call("GET", "/v1/aggregates/Account/acc-1", "", as(_key_writer, "acme")), 403, "forbidden",
                  "writer reads an aggregate");
  expect_rejected(call("GET", "/v1/query/accounts", "", as("", "acme")), 401, "unauthenticated",
                  "query, no key");
  // A body over max_body (1 MiB): 413 with the contract's body, never forwarded.
  expect_rejected(command(std::string((1 << 20) + 10, ' '), as(_key_acme, "acme")), 413, "payload_too_large",
                  "body over max_body");
  // No message echoes the key.
  EXPECT_EQ(forbidden.text.find(_key_reader), std::string::npos);

  std::this_thread::sleep_for(200ms);  // anything that leaked would have arrived by now
  EXPECT_EQ(agg.count(), 0);
  std::lock_guard lock(_queries.mu);
  EXPECT_TRUE(_queries.requests.empty());
}

TEST_F(gateway_node, relays_the_aggregate_answer_and_maps_rejection_codes) {
  fake_aggregate agg(_nats.url(), [](int, const seen_command& s) -> std::optional<std::string> {
    const auto body = json::parse(s.body);
    const auto amount = body["payload"].value("amount", 0);
    if (amount == 1) return rejected_body("insufficient_funds");
    if (amount == 2) return rejected_body("command_id_reused");
    if (amount == 3) return rejected_body("unavailable", true);
    return accepted_body(body.value("aggregate_id", ""));
  });
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto h = as(_key_acme, "acme");
  h.emplace("traceparent", traceparent);
  h.emplace("x-correlation-id", "corr-7");
  h.emplace("x-request-id", "req-9");
  auto ok = command(k_deposit, h);
  EXPECT_EQ(ok.status, 200) << ok.text;
  EXPECT_EQ(ok.text, accepted_body("acc-1"));
  EXPECT_EQ(ok.header("x-correlation-id"), "corr-7");
  EXPECT_EQ(ok.header("traceparent"), traceparent);
  EXPECT_EQ(ok.header("tenant-id"), "acme");
  EXPECT_EQ(ok.header("x-request-id"), "req-9");
  ASSERT_EQ(agg.count(), 1);
  const auto first = agg.seen().front();
  EXPECT_EQ(first.subject, "tenant.acme.command.Account.acc-1");
  EXPECT_EQ(first.body, k_deposit);  // forwarded as it is
  EXPECT_EQ(first.headers.at("tenant-id"), "acme");
  EXPECT_EQ(first.headers.at("x-correlation-id"), "corr-7");
  EXPECT_EQ(first.headers.at("traceparent"), traceparent);

  const auto with = [](int amount) {
    return R"({"aggregate_type":"Account","aggregate_id":"acc-1","payload":{"type":"withdraw","amount":)" +
           std::to_string(amount) + "}}";
  };
  auto domain = command(with(1), as(_key_acme, "acme"));
  EXPECT_EQ(domain.status, 422) << domain.text;
  EXPECT_EQ(domain.text, rejected_body("insufficient_funds"));
  auto reused = command(with(2), as(_key_acme, "acme"));
  EXPECT_EQ(reused.status, 409) << reused.text;
  EXPECT_EQ(reused.body.value("code", ""), "command_id_reused");
  auto unavailable = command(with(3), as(_key_acme, "acme"));  // no command id: not retried
  EXPECT_EQ(unavailable.status, 503) << unavailable.text;
  EXPECT_EQ(unavailable.header("Retry-After"), "1");
  EXPECT_EQ(unavailable.body.value("code", ""), "unavailable");
  EXPECT_EQ(agg.count(), 4);

  // No aggregate_id: the gateway generates a UUID v7, puts it on the subject and in the body.
  auto fresh =
      command(R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":0}})",
              as(_key_acme, "acme"));
  EXPECT_EQ(fresh.status, 200) << fresh.text;
  const auto last = agg.seen().back();
  const auto id = json::parse(last.body).value("aggregate_id", "");
  EXPECT_TRUE(schemas::is_uuid_v7(id)) << last.body;
  EXPECT_EQ(last.subject, "tenant.acme.command.Account." + id);
  EXPECT_EQ(fresh.body.value("aggregate_id", ""), id);
}

TEST_F(gateway_node, answers_deadline_exceeded_when_the_aggregate_never_answers) {
  fake_aggregate agg(_nats.url(), [](int, const seen_command&) { return std::nullopt; });
  auto h = as(_key_acme, "acme");
  h.emplace("x-request-timeout", "300");
  const auto started = std::chrono::steady_clock::now();
  auto r = command(k_deposit, h);
  const auto took = std::chrono::steady_clock::now() - started;
  expect_rejected(r, 504, "deadline_exceeded", "silent aggregate");
  EXPECT_NE(r.body.value("message", "").find("may or may not"), std::string::npos) << r.text;
  EXPECT_LT(took, 300ms + 2s);
  EXPECT_EQ(agg.count(), 1);

  auto bad = as(_key_acme, "acme");
  bad.emplace("x-request-timeout", "soon");
  expect_rejected(command(k_deposit, bad), 400, "invalid_command", "bad x-request-timeout");
  EXPECT_EQ(agg.count(), 1);
}

TEST_F(gateway_node, retries_unavailable_only_with_a_command_id) {
  fake_aggregate agg(_nats.url(), [](int n, const seen_command& s) -> std::optional<std::string> {
    if (n == 1) return rejected_body("unavailable", true);
    return accepted_body(json::parse(s.body).value("aggregate_id", ""));
  });
  const std::string body =
      R"({"aggregate_type":"Account","aggregate_id":"acc-1","command_id":"dep-1","payload":{"type":"deposit","amount":5}})";
  auto r = command(body, as(_key_acme, "acme"));
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body.value("status", ""), "accepted");
  ASSERT_EQ(agg.count(), 2);
  for (const auto& s : agg.seen()) EXPECT_EQ(json::parse(s.body).value("command_id", ""), "dep-1");
}

// During a move the old node's draining subscription may still deliver:
// its tenant_not_hosted ran nothing, so even a command without an id is
// resent, and NATS routes it to the new owner.
TEST_F(gateway_node, resends_a_command_refused_as_not_hosted_during_a_move) {
  fake_aggregate agg(_nats.url(), [](int n, const seen_command&) -> std::optional<std::string> {
    if (n == 1) return rejected_body("tenant_not_hosted", false);
    return accepted_body("acc-1");
  });
  auto r = command(k_deposit, as(_key_acme, "acme"));
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body.value("status", ""), "accepted");
  EXPECT_EQ(agg.count(), 2);
}

TEST_F(gateway_node, does_not_retry_a_command_without_its_id) {
  fake_aggregate agg(_nats.url(), [](int n, const seen_command&) -> std::optional<std::string> {
    if (n == 1) return rejected_body("unavailable", true);
    return accepted_body("acc-1");
  });
  auto r = command(k_deposit, as(_key_acme, "acme"));
  expect_rejected(r, 503, "unavailable", "no command id");
  EXPECT_EQ(r.header("Retry-After"), "1");
  EXPECT_EQ(agg.count(), 1);
}

TEST_F(gateway_node, retries_no_responders_with_an_idempotency_key_until_an_aggregate_answers) {
  // Nobody subscribes yet: NATS answers "no responders"; the fake comes up while the gateway backs off.
  auto h = as(_key_acme, "acme");
  h.emplace("Idempotency-Key", "idem-1");
  h.emplace("x-request-timeout", "10000");
  std::unique_ptr<fake_aggregate> agg;
  std::thread late([&] {
    std::this_thread::sleep_for(50ms);
    agg = std::make_unique<fake_aggregate>(_nats.url(),
                                           [](int, const seen_command&) { return accepted_body("acc-1"); });
  });
  auto r = command(k_deposit, h);
  late.join();
  EXPECT_EQ(r.status, 200) << r.text;
  ASSERT_TRUE(agg);
  ASSERT_GE(agg->count(), 1);
  EXPECT_EQ(json::parse(agg->seen().front().body).value("command_id", ""), "idem-1");

  // Without a command id, no responders is 503 at once.
  agg.reset();
  std::this_thread::sleep_for(100ms);
  expect_rejected(command(k_deposit, as(_key_acme, "acme")), 503, "unavailable", "no responders, no id");
}

TEST_F(gateway_node, relays_queries_to_the_query_service_with_the_tenant) {
  auto h = as(_key_reader, "acme");
  h.emplace("x-correlation-id", "corr-q");
  auto r = call("GET", "/v1/query/accounts?filter=balance%20%3E%2050&limit=10&order_by=balance:desc", "", h);
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(
      r.text,
      R"({"rows":[{"key":"acc-1","version":2,"row":{"balance":100,"open":true}}],"next_cursor":null,"position":7})");
  EXPECT_EQ(r.header("tenant-id"), "acme");
  {
    std::lock_guard lock(_queries.mu);
    ASSERT_EQ(_queries.requests.size(), 1U);
    EXPECT_EQ(_queries.tenants[0], "acme");
    EXPECT_EQ(_queries.correlations[0], "corr-q");
    EXPECT_EQ(_queries.requests[0].view(), "accounts");
    EXPECT_EQ(_queries.requests[0].filter(), "balance > 50");
    EXPECT_EQ(_queries.requests[0].limit(), 10U);
    EXPECT_EQ(_queries.requests[0].order_by(), "balance:desc");
    EXPECT_FALSE(_queries.requests[0].has_cursor());
  }
  auto broken = call("GET", "/v1/query/broken?filter=a%29", "", as(_key_reader, "acme"));
  expect_rejected(broken, 400, "invalid_query", "esflow-code mapped back");
  EXPECT_EQ(broken.body.value("message", ""), "filter: unexpected ')' at column 9");
  auto bad_limit = call("GET", "/v1/query/accounts?limit=ten", "", as(_key_reader, "acme"));
  expect_rejected(bad_limit, 400, "invalid_query", "bad limit");
  // UNAVAILABLE is retried (a read): the second attempt answers.
  auto flaky = call("GET", "/v1/query/flaky", "", as(_key_reader, "acme"));
  EXPECT_EQ(flaky.status, 200) << flaky.text;
  EXPECT_EQ(_queries.flaky_calls.load(), 2);
}

TEST_F(gateway_node, saga_reads_without_a_runner_are_not_found_and_info_names_the_upstreams) {
  auto r = call("GET", "/v1/sagas/Transfer/t-1", "", as(_key_reader, "acme"));
  expect_rejected(r, 404, "not_found", "no runner_http");
  EXPECT_NE(r.body.value("message", "").find("runner_http"), std::string::npos) << r.text;

  httplib::Client cli(_url);
  auto info = cli.Get("/info");
  ASSERT_TRUE(info);
  const auto j = json::parse(info->body, nullptr, false);
  ASSERT_TRUE(j.contains("gateway")) << info->body;
  EXPECT_EQ(j["gateway"].value("query_upstream", ""), "127.0.0.1:" + std::to_string(_grpc_port));
  EXPECT_EQ(j["gateway"]["commands"].value("nats", ""), _nats.url());

  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("esflow_gateway_requests_total{"), std::string::npos);
  EXPECT_NE(metrics->body.find("esflow_gateway_key_reloads_total"), std::string::npos);
}

// An aggregate node registers in TENANT_PLACEMENT (alone, it owns every
// tenant): the gateway proxies the aggregate reads to its HTTP address.
TEST_F(gateway_node, proxies_aggregate_reads_to_the_node_that_hosts_the_tenant) {
  // Before any node registers: nobody hosts the tenant.
  expect_rejected(call("GET", "/v1/aggregates/Account/acc-1", "", as(_key_reader, "acme")), 503,
                  "unavailable", "no owner yet");
  auto conn = nats::nats_connection::connect(nats::node_connection_options(_nats.url()));
  ASSERT_TRUE(conn.ok()) << conn.err().to_string();
  placement::placement_options po;
  po.node_id = "agg-1";
  po.kinds = {"aggregate"};
  po.http = _reads.address();
  po.nats = conn.value().get();
  auto agg = placement::placement_service::start(po);
  ASSERT_TRUE(agg.ok()) << agg.err().to_string();

  auto h = as(_key_reader, "acme");
  h.emplace("x-correlation-id", "corr-r");
  response r;
  ASSERT_TRUE(nats::testing::eventually(
      [&] {
        r = call("GET", "/v1/aggregates/Account/acc-1/events?after=2&limit=5", "", h);
        return r.status == 200;
      },
      5s))
      << r.text;
  EXPECT_EQ(r.body.value("target", ""), "/v1/aggregates/Account/acc-1/events?after=2&limit=5") << r.text;
  EXPECT_EQ(r.body.value("tenant", ""), "acme");
  EXPECT_EQ(r.body.value("correlation", ""), "corr-r");
  auto missing = call("GET", "/v1/aggregates/Account/missing", "", as(_key_reader, "acme"));
  expect_rejected(missing, 404, "not_found", "the node's 404 relayed");
  expect_rejected(call("GET", "/v1/aggregates/9bad/acc-1", "", as(_key_reader, "acme")), 400,
                  "invalid_command", "bad aggregate type");
  (*agg)->stop();
}

// `esflow keys add` while the gateway runs: the new key works without a
// restart (the store stats the file at most once a second).
TEST_F(gateway_node, a_key_added_while_running_is_accepted_within_seconds) {
  fake_aggregate agg(_nats.url(), [](int, const seen_command&) { return accepted_body("acc-1"); });
  const auto key = must_key((_dir.path() / "keys.jsonl").string(), {"initech"}, {"commands"}, "late");
  response r;
  EXPECT_TRUE(nats::testing::eventually(
      [&] {
        r = command(k_deposit, as(key, "initech"));
        return r.status == 200;
      },
      5s))
      << r.text;
  EXPECT_EQ(agg.seen().back().subject, "tenant.initech.command.Account.acc-1");
  httplib::Client cli(_url);
  auto metrics = cli.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("esflow_gateway_key_reloads_total 1"), std::string::npos) << metrics->body;
}

// Without its key file the gateway does not start: it could only deny.
TEST(gateway_binary, does_not_start_without_its_key_file) {
  const std::string cmd = "ESFLOW_KEYS_FILE=/nonexistent/keys.jsonl " + std::string(ESFLOW_BINARY_DIR) +
                          "/esflow run " + ESFLOW_SOURCE_DIR +
                          "/pipelines/gateway.yaml --nats nats://127.0.0.1:1 --http 127.0.0.1:0 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = ::pclose(p);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("/nonexistent/keys.jsonl"), std::string::npos) << out;
}

class gateway_node_with_runner : public gateway_node {
 protected:
  gateway_node_with_runner() { _with_runner = true; }
};

TEST_F(gateway_node_with_runner, proxies_saga_reads_to_the_runner) {
  auto r = call("GET", "/v1/sagas/Transfer/t-1", "", as(_key_reader, "acme"));
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body.value("path", ""), "/v1/sagas/Transfer/t-1");
  EXPECT_EQ(r.body.value("tenant", ""), "acme");
  EXPECT_EQ(_reads.requests.load(), 1);
  expect_rejected(call("GET", "/v1/sagas/Transfer/t-1", "", as(_key_writer, "acme")), 403, "forbidden",
                  "a writer reads a saga");
  EXPECT_EQ(_reads.requests.load(), 1);
}

// Saga replicas (docs/runner.md): the configured runner answers 421 with the
// owner's address; the gateway asks the owner once. An owner that answers
// 421 again is not followed further (no bouncing between runners).
TEST_F(gateway_node_with_runner, a_saga_read_answered_421_is_asked_again_at_the_owner_once) {
  fake_http_node owner;
  _reads.set_owner(owner.address());
  auto r = call("GET", "/v1/sagas/Transfer/moved-1", "", as(_key_reader, "acme"));
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body.value("path", ""), "/v1/sagas/Transfer/moved-1");
  EXPECT_EQ(r.body.value("tenant", ""), "acme");
  EXPECT_EQ(_reads.requests.load(), 1);
  EXPECT_EQ(owner.requests.load(), 1) << "asked at the owner";

  owner.set_owner(_reads.address());  // the owner names the first runner back
  _reads.set_owner(owner.address());
  auto bounced = call("GET", "/v1/sagas/Transfer/moved-2", "", as(_key_reader, "acme"));
  expect_rejected(bounced, 421, "tenant_not_hosted", "a second 421 is relayed");
  EXPECT_EQ(_reads.requests.load(), 2);
  EXPECT_EQ(owner.requests.load(), 2);

  _reads.set_owner("not an address");
  auto unusable = call("GET", "/v1/sagas/Transfer/moved-3", "", as(_key_reader, "acme"));
  expect_rejected(unusable, 421, "tenant_not_hosted", "no address to follow");
  EXPECT_EQ(owner.requests.load(), 2);
}

TEST_F(gateway_node, runner_admin_without_runner_grpc_is_not_found) {
  auto r = call("GET", "/admin/runner/status", "", {{"Authorization", "Bearer " + _key_admin}});
  expect_rejected(r, 404, "not_found", "no runner_grpc");
  EXPECT_NE(r.body.value("message", "").find("no runner configured"), std::string::npos) << r.text;
  EXPECT_NE(r.body.value("message", "").find("runner_grpc"), std::string::npos) << r.text;
  EXPECT_EQ(_runner_admin.calls.load(), 0);
}

class gateway_node_with_runner_admin : public gateway_node {
 protected:
  gateway_node_with_runner_admin() { _with_runner_admin = true; }
};

// /admin/runner/{status,drain,reload}: the `admin` right, any tenant (not
// tenant-scoped), forwarded to RunnerAdmin at gateway.runner_grpc.
TEST_F(gateway_node_with_runner_admin, forwards_the_admin_routes_to_runner_admin) {
  auto h = httplib::Headers{{"Authorization", "Bearer " + _key_admin}, {"x-correlation-id", "corr-ops"}};
  auto st = call("GET", "/admin/runner/status", "", h);
  EXPECT_EQ(st.status, 200) << st.text;
  EXPECT_EQ(st.body.value("mode", ""), "saga") << st.text;
  EXPECT_EQ(st.body.value("outbox_depth", 0), 3) << st.text;
  EXPECT_EQ(st.body["pipelines"]["runner"]["sagas"][0].value("name", ""), "Transfer") << st.text;
  EXPECT_EQ(st.header("x-correlation-id"), "corr-ops");
  EXPECT_EQ(st.header("tenant-id"), "_");

  // Not tenant-scoped: a tenant the key does not hold changes nothing.
  auto other = h;
  other.emplace("x-tenant-id", "globex");
  auto drain = call("POST", "/admin/runner/drain", "", other);
  EXPECT_EQ(drain.status, 202) << drain.text;
  EXPECT_EQ(drain.body.value("draining", false), true) << drain.text;
  EXPECT_EQ(drain.body.value("already_draining", true), false) << drain.text;
  EXPECT_EQ(drain.body["runner"].value("draining", false), true) << drain.text;

  auto reload = call("POST", "/admin/runner/reload", "", h);
  expect_rejected(reload, 422, "reload_unsupported", "reload");
  EXPECT_NE(reload.body.value("message", "").find("rolling restart"), std::string::npos) << reload.text;

  std::lock_guard lock(_runner_admin.mu);
  EXPECT_EQ(_runner_admin.names, (std::vector<std::string>{"Status", "Drain", "Reload"}));
  EXPECT_EQ(_runner_admin.correlations.front(), "corr-ops");
}

TEST_F(gateway_node_with_runner_admin, a_key_without_admin_is_forbidden_and_nothing_reaches_the_runner) {
  for (const auto& key : {_key_acme, _key_both, _key_reader, _key_writer}) {
    auto r = call("POST", "/admin/runner/drain", "", as(key, "acme"));
    expect_rejected(r, 403, "forbidden", "drain without admin");
    EXPECT_NE(r.body.value("message", "").find("admin"), std::string::npos) << r.text;
    expect_rejected(call("GET", "/admin/runner/status", "", as(key, "acme")), 403, "forbidden",
                    "status without admin");
    expect_rejected(call("POST", "/admin/runner/reload", "", as(key, "acme")), 403, "forbidden",
                    "reload without admin");
  }
  expect_rejected(call("GET", "/admin/runner/status", "", as("", "acme")), 401, "unauthenticated", "no key");
  expect_rejected(call("POST", "/admin/runner/drain", "", as("esk_unknown", "acme")), 401, "unauthenticated",
                  "unknown key");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(_runner_admin.calls.load(), 0);
}

// A real runner node (the shipped aggregate.yaml + runner-saga.yaml on the
// embedded log, in-process, with a gRPC server) behind the gateway.
class gateway_node_with_real_runner : public gateway_node {
 protected:
  void SetUp() override {
    ::unsetenv("ESFLOW_NATS_URL");  // the runner's files read it: this runner is embedded only
    cli::serve_options o;
    o.overrides.data_dir = (_dir.path() / "runner-data").string();
    o.overrides.http = "127.0.0.1:0";
    o.overrides.grpc = "127.0.0.1:0";
    const std::string pipelines = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
    auto served = cli::serve_nodes({pipelines + "aggregate.yaml", pipelines + "runner-saga.yaml"}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _runner = std::move(served).value();
    ASSERT_TRUE(nats::testing::eventually([&] { return cli::served_host(*_runner).ready().ok; }, 10s));
    _runner_grpc = cli::served_host(*_runner).grpc()->target();
    gateway_node::SetUp();
  }
  void TearDown() override {
    gateway_node::TearDown();
    _runner.reset();
  }
  std::shared_ptr<cli::served_nodes> _runner;
};

TEST_F(gateway_node_with_real_runner, status_and_drain_reach_the_runner) {
  const httplib::Headers h{{"Authorization", "Bearer " + _key_admin}};
  auto st = call("GET", "/admin/runner/status", "", h);
  ASSERT_EQ(st.status, 200) << st.text;
  EXPECT_EQ(st.body.value("mode", ""), "saga") << st.text;
  EXPECT_EQ(st.body.value("draining", true), false) << st.text;
  EXPECT_TRUE(st.body["outbox_depth"].is_number_unsigned()) << st.text;
  EXPECT_EQ(st.body["pipelines"]["runner"]["sagas"][0].value("name", ""), "Transfer") << st.text;

  expect_rejected(call("POST", "/admin/runner/drain", "", as(_key_acme, "acme")), 403, "forbidden",
                  "drain without admin");
  EXPECT_FALSE(cli::served_host(*_runner).drain_requested());

  auto drain = call("POST", "/admin/runner/drain", "", h);
  EXPECT_EQ(drain.status, 202) << drain.text;
  EXPECT_EQ(drain.body.value("draining", false), true) << drain.text;
  EXPECT_TRUE(cli::served_host(*_runner).drain_requested());
  httplib::Client runner_http(cli::served_url(*_runner));
  auto ready = runner_http.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  st = call("GET", "/admin/runner/status", "", h);
  EXPECT_EQ(st.body.value("draining", false), true) << st.text;

  auto reload = call("POST", "/admin/runner/reload", "", h);
  EXPECT_EQ(reload.status, 200) << reload.text;
  EXPECT_EQ(reload.body.value("reloaded", false), true) << reload.text;
}

class gateway_node_bounded : public gateway_node {
 protected:
  gateway_node_bounded() { _max_in_flight = 2; }
};

// gateway.max_in_flight: beyond it a request is 503 unavailable at once and
// never reaches the upstream.
TEST_F(gateway_node_bounded, answers_unavailable_beyond_max_in_flight) {
  fake_aggregate agg(_nats.url(), [](int, const seen_command&) { return std::nullopt; });
  auto h = as(_key_acme, "acme");
  h.emplace("x-request-timeout", "1500");
  std::vector<int> statuses(4);
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] { statuses[i] = command(k_deposit, h).status; });
  for (auto& t : clients) t.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 504), 2);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 503), 2);
  EXPECT_EQ(agg.count(), 2);
  // Slots come back: the next one is served again.
  EXPECT_EQ(command(k_deposit, h).status, 504);
}

}  // namespace
}  // namespace esflow::gateway
