// http.commands against a test pipeline whose one stage answers as aggregate.answer
// would: the ingest's own rules (body limit, admission, timeouts, headers,
// dropped messages) without the aggregate stages.
#include "cli/app.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/aggregate/aggregate_context.h"
#include "stages/builtin.h"
#include "tests/stages/ingest/http_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow {
namespace {

using http_test::expect_rejection;
using http_test::json_of;

// Messages a test holds unanswered (released at the end of each test).
std::mutex g_held_mu;
std::vector<graph::message_ptr> g_held;

// The accepted answer of `m`: the context the ingest filled echoed in an event payload.
void answer_accepted(graph::message& m) {
  auto& ctx = aggregate::context_of(m);
  ctx.trace = schemas::make_trace_context(ctx.incoming_traceparent, ctx.incoming_correlation_id);
  ctx.tenant = ctx.transport_tenant;
  ctx.result.accepted = true;
  ctx.result.aggregate_id = "acc-1";
  ctx.result.version = 1;
  schemas::event e;
  e.event_type = "echo";
  e.payload_json = nlohmann::json{{"transport", ctx.transport},     {"tenant_given", ctx.tenant_given},
                                  {"tenant", ctx.transport_tenant}, {"idempotency_key", ctx.idempotency_key},
                                  {"request_id", ctx.request_id},   {"body", m.body}}
                       .dump();
  ctx.result.events.push_back(e);
  ctx.answer = schemas::encode_command_result(ctx.result);
  m.reply->complete(m);
}

std::size_t held_count() {
  std::lock_guard lock(g_held_mu);
  return g_held.size();
}

// Answers every held message as accepted.
void release_held() {
  std::vector<graph::message_ptr> held;
  {
    std::lock_guard lock(g_held_mu);
    held.swap(g_held);
  }
  for (auto& m : held) answer_accepted(*m);
}

// Answers like publish: "reject" -> a domain rejection, "drop" -> no answer
// (the message dies), "hold" -> kept unanswered, else accepted with the
// context the ingest filled echoed in an event payload.
class test_answer final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter&) override {
    auto& ctx = aggregate::context_of(*m);
    if (m->body == "drop") return;
    if (m->body == "hold") {
      std::lock_guard lock(g_held_mu);
      g_held.push_back(std::move(m));
      return;
    }
    if (m->body != "reject") return answer_accepted(*m);
    ctx.trace = schemas::make_trace_context(ctx.incoming_traceparent, ctx.incoming_correlation_id);
    m->error = error::domain("insufficient_funds", "balance 10 < 100");
    m->reply->complete(*m);
  }
};

// Another node kind's context, which no stage of the aggregate kind can use.
struct foreign_context final : graph::message_context {
  std::string_view context_name() const noexcept override { return "foreign"; }
};

// Swaps in a foreign context while claiming to provide what the aggregate
// stages need: the load-time check cannot see through it, the runtime check must.
graph::stage_descriptor foreign_context_descriptor() {
  graph::stage_descriptor d;
  d.kind = "test.foreign_context";
  d.description = "replaces the message's context with another kind's (wiring bug)";
  d.provides_context = {"command", "aggregate"};
  d.mutates_context = true;
  class swap final : public graph::stage {
   public:
    void process(graph::message_ptr m, const graph::emitter& out) override {
      m->context = std::make_shared<foreign_context>();
      m->key = "k";
      out.emit(std::move(m));
    }
  };
  d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new swap());
  };
  return d;
}

const graph::kind_registry& test_registry() {
  static const graph::kind_registry r = [] {
    graph::kind_registry reg;
    stages::register_builtin_stages(reg);
    graph::stage_descriptor d;
    d.kind = "test.answer";
    d.description = "answers like publish";
    d.output_ports = {};
    d.role = graph::stage_role::sink;
    d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
      return std::unique_ptr<graph::stage>(new test_answer());
    };
    ignore(reg.add(std::move(d)));
    ignore(reg.add(foreign_context_descriptor()));
    return reg;
  }();
  return r;
}

constexpr auto k_pipeline = R"(pipeline: ingest_test
settings:
  max_in_flight: 4
stages:
  http: { kind: http.commands, timeout: 400ms, max_body: 1KiB }
  answer: { kind: test.answer }
flow:
  - http -> answer
)";

class http_ingest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = _dir.write("ingest.yaml", k_pipeline);
    auto served = cli::serve_nodes({file}, {.http = "127.0.0.1:0", .registry = &test_registry()});
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    _url = cli::served_url(*_served);
  }
  void TearDown() override {
    {
      std::lock_guard lock(g_held_mu);
      g_held.clear();
    }
    _served.reset();
  }
  httplib::Client client() const {
    httplib::Client c(_url);
    c.set_read_timeout(10, 0);
    return c;
  }
  httplib::Result post(const std::string& body, httplib::Headers h = {{"x-tenant-id", "acme"}}) const {
    auto c = client();
    return c.Post("/v1/commands", h, body, "application/json");
  }

  http_test::temp_dir _dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::string _url;
};

TEST_F(http_ingest, fills_the_command_context_from_headers) {
  auto r = post("hello", {{"x-tenant-id", "acme"},
                          {"Idempotency-Key", "key-1"},
                          {"x-request-id", "req-42"},
                          {"x-correlation-id", "corr-1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(r->get_header_value("x-request-id"), "req-42");
  EXPECT_EQ(r->get_header_value("x-correlation-id"), "corr-1");
  EXPECT_EQ(r->get_header_value("tenant-id"), "acme");
  EXPECT_TRUE(schemas::parse_traceparent(r->get_header_value("traceparent")));
  const auto j = json_of(r);
  EXPECT_EQ(j["status"], "accepted");
  const auto echo = j["events"][0]["payload"];
  EXPECT_EQ(echo["transport"], "http");
  EXPECT_EQ(echo["tenant_given"], true);
  EXPECT_EQ(echo["tenant"], "acme");
  EXPECT_EQ(echo["idempotency_key"], "key-1");
  EXPECT_EQ(echo["request_id"], "req-42");
  EXPECT_EQ(echo["body"], "hello");
}

TEST_F(http_ingest, missing_tenant_header_is_not_given) {
  auto r = post("x", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(json_of(r)["events"][0]["payload"]["tenant_given"], false);
  EXPECT_EQ(r->get_header_value("tenant-id"), "_");
}

TEST_F(http_ingest, domain_rejection_is_422_with_the_programs_code) {
  auto r = post("reject");
  expect_rejection(r, 422, "insufficient_funds");
  EXPECT_EQ(json_of(r)["message"], "balance 10 < 100");
}

TEST_F(http_ingest, dropped_message_answers_internal_instead_of_hanging) {
  auto r = post("drop");
  expect_rejection(r, 500, "internal");
}

TEST_F(http_ingest, no_answer_within_timeout_is_503_unavailable) {
  const auto start = std::chrono::steady_clock::now();
  auto r = post("hold");
  expect_rejection(r, 503, "unavailable");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(http_ingest, full_pipeline_is_503_at_once) {
  std::vector<std::future<httplib::Result>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::async(std::launch::async, [&] { return post("hold"); }));
  // Bounded wait (10 s) for the four to be admitted and held: on a loaded CI
  // machine the requests may take a while to arrive.
  std::size_t held_now = 0;
  for (int i = 0; i < 2000 && held_now < 4; ++i) {
    {
      std::lock_guard lock(g_held_mu);
      held_now = g_held.size();
    }
    if (held_now < 4) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(held_now, 4u) << "the pipeline never filled";
  auto r = post("hello");
  expect_rejection(r, 503, "unavailable");
  EXPECT_NE(json_of(r)["message"].get<std::string>().find("full"), std::string::npos);
  for (auto& f : held) expect_rejection(f.get(), 503, "unavailable");
}

TEST_F(http_ingest, body_over_max_body_is_413_without_reading_it) {
  auto r = post(std::string(1025, 'x'));
  expect_rejection(r, 413, "payload_too_large");
  auto ok = post(std::string(1024, 'x'));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(http_ingest, chunked_body_over_max_body_is_413) {
  auto c = client();
  std::size_t sent = 0;
  auto r = c.Post(
      "/v1/commands", {{"x-tenant-id", "acme"}},
      [&](size_t, httplib::DataSink& sink) {
        if (sent >= 4096) {
          sink.done();
          return true;
        }
        std::string chunk(512, 'y');
        sent += chunk.size();
        return sink.write(chunk.data(), chunk.size());
      },
      "application/json");
  expect_rejection(r, 413, "payload_too_large");
}

TEST_F(http_ingest, keep_alive_connection_survives_a_413) {
  auto c = client();
  c.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto big = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, std::string(5000, 'z'), "application/json");
    expect_rejection(big, 413, "payload_too_large");
    auto ok = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, "small", "application/json");
    ASSERT_TRUE(ok) << httplib::to_string(ok.error());
    EXPECT_EQ(ok->status, 200);
  }
}

TEST_F(http_ingest, after_drain_commands_are_503) {
  for (const auto& n : cli::served_host(*_served).nodes()) ASSERT_TRUE(n->drain().ok());
  auto r = post("hello");
  expect_rejection(r, 503, "unavailable");
  EXPECT_EQ(r->get_header_value("tenant-id"), "acme");
}

// A context of the wrong type reaching a stage is an `internal` answer and a
// counted stage error, never a wrong cast.
TEST(http_ingest_wiring, a_foreign_context_at_an_aggregate_stage_is_answered_internal) {
  http_test::temp_dir dir;
  const auto file = dir.write("mismatch.yaml",
                              "pipeline: mismatch\n"
                              "settings: { data_dir: " +
                                  dir.str() +
                                  "/data, max_in_flight: 4 }\n"
                                  "aggregates:\n"
                                  "  Account: { program: " ESFLOW_SOURCE_DIR
                                  "/pipelines/programs/account.lua }\n"
                                  "stages:\n"
                                  "  http: { kind: http.commands, timeout: 2s }\n"
                                  "  foreign: { kind: test.foreign_context }\n"
                                  "  rehydrate: { kind: aggregate.rehydrate, key: message }\n"
                                  "  out: { kind: sink.null }\n"
                                  "flow:\n"
                                  "  - http -> foreign -> rehydrate -> out\n");
  auto served = cli::serve_nodes({file}, {.http = "127.0.0.1:0", .registry = &test_registry()});
  ASSERT_TRUE(served.ok()) << served.err().to_string();
  httplib::Client c(cli::served_url(*served.value()));
  c.set_read_timeout(10, 0);
  auto r = c.Post("/v1/commands", {{"x-tenant-id", "acme"}},
                  R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":1}})",
                  "application/json");
  expect_rejection(r, 500, "internal", "foreign context");
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("esflow_stage_errors_total{kind=\"aggregate.rehydrate\",pipeline=\"mismatch\",stage="
                         "\"rehydrate\"} 1"),
            std::string::npos)
      << m->body;
}

// Issue 8 item 7: a flood of commands that wait for their answers can never
// take every HTTP worker. 8 workers, 2 reserved, a queue of 4: 6 commands
// are admitted and held; the other 18 get 503 unavailable + Retry-After at
// once (from a worker: commands full, or the refuser: queue full); /health and
// /metrics answer within 1 s during the flood; the server never runs more
// than its 8 workers (+ listen and refuser threads); every admitted command
// gets its real answer once the pipeline answers.
TEST(http_ingest_bounds, a_command_flood_is_refused_and_admin_stays_answerable) {
  constexpr int k_workers = 8, k_reserved = 2, k_flood = 24;
  constexpr int k_admitted = k_workers - k_reserved;
  http_test::temp_dir dir;
  const auto file = dir.write("flood.yaml", R"(pipeline: flood
settings:
  max_in_flight: 64
stages:
  http: { kind: http.commands, timeout: 20s, server_threads: 8, reserved_threads: 2, server_queue: 4 }
  answer: { kind: test.answer }
flow:
  - http -> answer
)");
  auto served = cli::serve_nodes({file}, {.http = "127.0.0.1:0", .registry = &test_registry()});
  ASSERT_TRUE(served.ok()) << served.err().to_string();
  const auto url = cli::served_url(*served.value());
  auto& http = cli::served_host(*served.value()).http();
  const auto get = [&](const std::string& path) {
    httplib::Client c(url);
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(2, 0);
    return c.Get(path);
  };

  // One command first: the graph's TBB workers exist before the count.
  ASSERT_TRUE(get("/health"));
  {
    httplib::Client c(url);
    c.set_read_timeout(10, 0);
    auto warm = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, "hello", "application/json");
    ASSERT_TRUE(warm);
    ASSERT_EQ(warm->status, 200) << warm->body;
  }
  const auto threads_before = http_test::thread_count();
  std::vector<std::future<httplib::Result>> flood;
  for (int i = 0; i < k_flood; ++i)
    flood.push_back(std::async(std::launch::async, [&] {
      httplib::Client c(url);
      c.set_read_timeout(30, 0);
      return c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, "hold", "application/json");
    }));
  // On a failed assertion too: answer the held commands before the futures wait for them.
  struct release_at_exit {
    ~release_at_exit() { release_held(); }
  } release_guard;
  // Bounded wait (10 s): the admitted commands held, every other one answered.
  const auto answered = [&] {
    int n = 0;
    for (auto& f : flood) n += f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    return n;
  };
  for (int i = 0; i < 2000 && (held_count() < k_admitted || answered() < k_flood - k_admitted); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(held_count(), static_cast<std::size_t>(k_admitted)) << "commands held by the pipeline";
  ASSERT_EQ(answered(), k_flood - k_admitted) << "refused commands answered at once";

  // The flood is on: admin routes still answer, fast.
  for (const auto* path : {"/health", "/metrics", "/info", "/health"}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = get(path);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r) << path << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_LT(took, std::chrono::seconds(1)) << path;
  }
  // Bounded threads, whatever the flood: the pool's workers and its refuser
  // (and nothing else grew in the process but the test's own clients).
  const auto stats = http.stats();
  EXPECT_EQ(stats.workers, static_cast<std::size_t>(k_workers));
  EXPECT_EQ(stats.threads, static_cast<std::size_t>(k_workers + 1));
  EXPECT_LE(http_test::thread_count(), threads_before + k_flood);
  EXPECT_EQ(stats.commands, static_cast<std::size_t>(k_admitted));
  EXPECT_EQ(stats.rejected_queue + stats.rejected_commands, static_cast<std::uint64_t>(k_flood - k_admitted));
  auto metrics = get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("esflow_http_rejected_total{reason=\"commands_full\"} " +
                               std::to_string(stats.rejected_commands)),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("esflow_http_commands_in_flight " + std::to_string(k_admitted)),
            std::string::npos);

  // Nothing admitted is lost: the held commands get their real answers.
  release_held();
  int accepted = 0, refused = 0;
  for (auto& f : flood) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    if (r->status == 200) {
      ++accepted;
      EXPECT_EQ(json_of(r)["status"], "accepted") << r->body;
      continue;
    }
    ++refused;
    expect_rejection(r, 503, "unavailable", "flood");
    EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  }
  EXPECT_EQ(accepted, k_admitted);
  EXPECT_EQ(refused, k_flood - k_admitted);
  EXPECT_EQ(http.stats().commands, 0u);
  // Capacity is back: a new command is admitted and answered.
  httplib::Client c(url);
  c.set_read_timeout(10, 0);
  auto again = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, "hello", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
}

TEST(http_ingest_bounds, reserved_threads_must_leave_workers_for_commands) {
  http_test::temp_dir dir;
  const auto file = dir.write("bad.yaml", R"(pipeline: bad
stages:
  http: { kind: http.commands, server_threads: 4, reserved_threads: 4 }
  answer: { kind: test.answer }
flow:
  - http -> answer
)");
  auto served = cli::serve_nodes({file}, {.http = "127.0.0.1:0", .registry = &test_registry()});
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.err().code, errc::invalid_config);
  EXPECT_NE(served.err().message.find("reserved"), std::string::npos) << served.err().to_string();
}

}  // namespace
}  // namespace esflow
