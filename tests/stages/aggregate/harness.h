#pragma once
// A real aggregate node for tests: a temp-dir RocksDB, the shipped stages, and
// a `test.feed` source that admits commands with a transport context (tenant,
// Idempotency-Key, subject) and records each command's answer by index.
#include "cli/app.h"
#include "common/service_registry.h"
#include "graph/kind_registry.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"
#include "schemas/json_encode.h"
#include "stages/aggregate/aggregate_context.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/builtin.h"
#include "storage/event_log_factory.h"
#include "tests/storage/temp_dir.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace esflow::aggregate::testing {

struct command_in {
  command_in(std::string b,
             std::optional<std::string> t = std::string("acme"))  // NOLINT: brace-init in tests
      : body(std::move(b)), tenant(std::move(t)) {}
  std::string body;
  std::optional<std::string> tenant;  // transport tenant; nullopt: none given
  std::string idempotency_key;
  std::string subject_type;
  std::string subject_id;
};

struct outcome {
  bool done = false;
  bool accepted = false;
  schemas::command_result result;  // publish's CommandResult (accepted or rejected)
  std::string code;                // rejection code ("" when accepted)
  std::string message;
  std::string json;  // the encoded CommandResult
};

class feed {
 public:
  std::vector<command_in> in;
  std::vector<outcome> out;
  std::mutex mu;
};

class recorder final : public graph::reply_handle {
 public:
  recorder(std::shared_ptr<feed> f, std::size_t i) : _feed(std::move(f)), _i(i) {}
  void complete(const graph::message& m) override {
    const auto* ctx = m.context_as<aggregate_context>();
    std::lock_guard lock(_feed->mu);
    auto& o = _feed->out[_i];
    o.done = true;
    if (ctx) o.result = ctx->result;
    if (m.error) {
      o.result = schemas::make_rejection(*m.error);
      o.code = m.error->code_text;
      o.message = m.error->message;
    }
    o.accepted = o.result.accepted;
    o.json = schemas::encode_command_result(o.result);
  }

 private:
  std::shared_ptr<feed> _feed;
  std::size_t _i;
};

class feed_source final : public graph::stage {
 public:
  explicit feed_source(std::shared_ptr<feed> f) : _feed(std::move(f)) {}
  void run(graph::source_output& out) override {
    for (std::size_t i = 0; i < _feed->in.size(); ++i) {
      const auto& c = _feed->in[i];
      auto m = graph::make_message();
      m->body = c.body;
      auto ctx = std::make_shared<aggregate_context>();
      ctx->transport = "test";
      ctx->tenant_given = c.tenant.has_value();
      ctx->transport_tenant = c.tenant.value_or("");
      ctx->idempotency_key = c.idempotency_key;
      ctx->subject_type = c.subject_type;
      ctx->subject_id = c.subject_id;
      m->context = std::move(ctx);
      m->reply = std::make_shared<recorder>(_feed, i);
      if (!out.put(std::move(m))) return;
    }
  }

 private:
  std::shared_ptr<feed> _feed;
};

inline graph::stage_descriptor feed_descriptor() {
  graph::stage_descriptor d;
  d.kind = "test.feed";
  d.description = "test commands with a transport context";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new feed_source(init.services.find<feed>("")));
  };
  return d;
}

inline std::string source_dir() { return ESFLOW_SOURCE_DIR; }
inline std::string account_program() { return source_dir() + "/pipelines/programs/account.lua"; }
inline std::string faulty_program() { return source_dir() + "/tests/stages/aggregate/programs/faulty.lua"; }

struct node_options {
  std::string durability = "relaxed";
  std::string tenancy = "multi";
  int snapshot_every = 100;
  int max_retries = 3;
  std::string hosted;  // YAML list text, e.g. "[acme]"
  int cache_mb = 64;
};

// Commands -> answers through a freshly built node on `data_dir`. Each run
// opens and closes the storage (the service registry dies with the run).
class harness {
 public:
  harness() {
    stages::register_builtin_stages(_registry);
    auto added = _registry.add(feed_descriptor());
    EXPECT_TRUE(added.ok());
  }

  std::string data_dir() const { return _dir.str() + "/data"; }
  const std::string& dir() const { return _dir_str; }

  std::string pipeline_text(const node_options& o, const std::string& source) const {
    std::ostringstream y;
    y << "pipeline: agg_test\n"
      << "settings:\n"
      << "  data_dir: " << data_dir() << "\n"
      << "  durability: " << o.durability << "\n"
      << "  tenancy: " << o.tenancy << "\n"
      << "  http: 127.0.0.1:0\n"
      << "aggregates:\n"
      << "  Account: { program: " << account_program() << ", snapshot_every: " << o.snapshot_every << " }\n"
      << "  Faulty: { program: " << faulty_program() << ", gas: 100000, memory: 4MiB }\n"
      << "stages:\n"
      << source << "  tenant: { kind: tenant.gate" << (o.hosted.empty() ? "" : ", hosted: " + o.hosted)
      << " }\n"
      << "  decode: { kind: decode.command, max_payload: 4KiB }\n"
      << "  rehydrate: { kind: aggregate.rehydrate, key: message, concurrency: 4, cache_mb: " << o.cache_mb
      << " }\n"
      << "  decide: { kind: aggregate.decide, key: message, concurrency: 4 }\n"
      << "  commit: { kind: aggregate.commit, key: message, max_retries: " << o.max_retries << " }\n"
      << "  answer: { kind: aggregate.answer }\n";
    return y.str();
  }

  result<graph::pipeline_spec> spec(const node_options& o) const {
    auto text = pipeline_text(o, "  feed: { kind: test.feed }\n") + "  ack: { kind: ack }\n" +
                "flow:\n  - feed -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> ack\n"
                "  - \"*.error -> answer\"\n";
    return graph::load_pipeline_text(text, "agg_test.yaml", _dir.str(), _registry);
  }

  // Runs `commands` through one node; `during` (optional) runs with the node's
  // service after build, before start.
  std::vector<outcome> run(std::vector<command_in> commands, const node_options& o = {},
                           const std::function<void(aggregate_service&)>& before = {},
                           const std::function<void(aggregate_service&)>& after = {}) {
    auto s = spec(o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.err().message);
    if (!s.ok()) return {};
    auto f = std::make_shared<feed>();
    f->in = std::move(commands);
    f->out.resize(f->in.size());
    // The host function of run/dev (cli::serve_loaded), not a node of our own.
    auto served = serve(std::move(s).value(), f);
    if (!served) return {};
    auto& services = cli::served_services(*served);
    if (before) before(*service(services));
    cli::start_served(*served);
    auto& n = *cli::served_host(*served).nodes().front();
    EXPECT_TRUE(n.wait_finished(std::chrono::steady_clock::now() + std::chrono::seconds(120)));
    ignore(cli::stop_served(*served));
    if (after) after(*service(services));
    served.reset();
    std::lock_guard lock(f->mu);
    for (std::size_t i = 0; i < f->out.size(); ++i)
      EXPECT_TRUE(f->out[i].done) << "command " << i << " unanswered";
    return f->out;
  }

  // Builds (not starts) the pipeline through the host function, with `f` for test.feed.
  std::shared_ptr<cli::served_nodes> serve(graph::pipeline_spec spec,
                                           std::shared_ptr<feed> f = nullptr) const {
    cli::serve_options so;
    so.registry = &_registry;
    so.start = false;
    so.prepare = [f, hook = prepare_hook](esflow::service_registry& services) {
      services.put<feed>("", f ? f : std::make_shared<feed>());
      if (hook) hook(services);
    };
    auto served = cli::serve_loaded({std::move(spec)}, so);
    EXPECT_TRUE(served.ok()) << (served.ok() ? "" : served.err().message);
    return served.ok() ? served.value() : nullptr;
  }

  outcome run_one(command_in c, const node_options& o = {}) {
    auto out = run({std::move(c)}, o);
    return out.empty() ? outcome{} : out[0];
  }

  std::shared_ptr<aggregate_service> service(esflow::service_registry& services) const {
    return services.find<aggregate_service>("aggregate:" + storage::normalise_data_dir(data_dir()));
  }

  // A service of its own on the data dir (no node running), for reads.
  std::shared_ptr<aggregate_service> open_service(const node_options& o = {}) const {
    auto s = spec(o);
    EXPECT_TRUE(s.ok());
    aggregate_service_options so;
    auto store = storage::node_store::shared({.data_dir = data_dir(), .mode = storage::durability::relaxed});
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.err().to_string());
    if (!store.ok()) return nullptr;
    storage::event_log_env env;
    env.store = store.value();
    auto log = storage::embedded_backend().make({}, env);
    EXPECT_TRUE(log.ok());
    if (!log.ok()) return nullptr;
    so.store = store.value();
    so.log = log.value();
    so.aggregates = s->sections.at("aggregates");
    so.pipeline_file = "agg_test.yaml";
    auto svc = aggregate_service::open(so);
    EXPECT_TRUE(svc.ok()) << (svc.ok() ? "" : svc.err().to_string());
    return svc.ok() ? svc.value() : nullptr;
  }

  const graph::kind_registry& registry() const { return _registry; }
  void add_kind(const graph::stage_descriptor& d) { EXPECT_TRUE(_registry.add(d).ok()) << d.kind; }

  // Runs on every node's services before build (e.g. to put a test event-log factory).
  std::function<void(esflow::service_registry&)> prepare_hook;

 private:
  storage::testing::temp_dir _dir;
  std::string _dir_str = _dir.str();
  graph::kind_registry _registry;
};

// A command body.
inline std::string account_cmd(const std::string& id, const std::string& payload,
                               const std::string& command_id = {}, const std::string& extra = {}) {
  std::string b = R"({"aggregate_type":"Account","aggregate_id":")" + id + R"(","payload":)" + payload;
  if (!command_id.empty()) b += R"(,"command_id":")" + command_id + "\"";
  b += extra;
  b += "}";
  return b;
}

}  // namespace esflow::aggregate::testing
