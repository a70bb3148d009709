// First-command latency after a restart, by history length, on both event-log
// backends (bench/README.md, "Cold start"). For each history H: one Account
// gets H events through the aggregate pipeline (snapshot every 100, as
// shipped); the node stops; a new node on the same data directory (cold
// cache) answers one more command to it, timed from admission to answer.
// Three restarts per H, the median reported, beside the same run's ceilings:
// the first command to a brand-new aggregate after a restart, one RocksDB
// snapshot read, and (JetStream) one direct get round trip.
//
// ESFLOW_COLD_HISTORIES=100,1000 limits the histories (default 100, 1000,
// 10000, 100000, and 100099: the worst tail, 99 events after the last
// snapshot); the JetStream rows need nats-server (ESFLOW_NATS_SERVER or
// PATH), else they are skipped with a line saying so.
#include "cli/app.h"
#include "graph/kind_registry.h"
#include "graph/pipeline_loader.h"
#include "stages/aggregate/aggregate_context.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/builtin.h"
#include "storage/jetstream/jetstream_event_log.h"
#include "storage/node_store.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/node_host.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace esflow::aggregate {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// Commands for one run, and when each was admitted and answered.
struct feed {
  std::vector<std::string> bodies;
  std::vector<clock_type::time_point> admitted, answered;
  std::vector<std::string> errors;
  std::mutex mu;
};

class answer_clock final : public graph::reply_handle {
 public:
  answer_clock(std::shared_ptr<feed> f, std::size_t i) : _feed(std::move(f)), _i(i) {}
  void complete(const graph::message& m) override {
    std::lock_guard lock(_feed->mu);
    _feed->answered[_i] = clock_type::now();
    if (m.error) _feed->errors[_i] = m.error->code_text + ": " + m.error->message;
  }

 private:
  std::shared_ptr<feed> _feed;
  std::size_t _i;
};

class feed_source final : public graph::stage {
 public:
  explicit feed_source(std::shared_ptr<feed> f) : _feed(std::move(f)) {}
  void run(graph::source_output& out) override {
    for (std::size_t i = 0; i < _feed->bodies.size(); ++i) {
      auto m = graph::make_message();
      m->body = _feed->bodies[i];
      auto ctx = std::make_shared<aggregate_context>();
      ctx->transport = "bench";
      ctx->tenant_given = true;
      ctx->transport_tenant = "acme";
      m->context = std::move(ctx);
      m->reply = std::make_shared<answer_clock>(_feed, i);
      {
        std::lock_guard lock(_feed->mu);
        _feed->admitted[i] = clock_type::now();
      }
      if (!out.put(std::move(m))) return;
    }
  }

 private:
  std::shared_ptr<feed> _feed;
};

graph::stage_descriptor feed_descriptor() {
  graph::stage_descriptor d;
  d.kind = "bench.feed";
  d.description = "benchmark commands";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(new feed_source(init.services.find<feed>("")));
  };
  return d;
}

std::string command(const std::string& id, const std::string& payload) {
  return R"({"aggregate_type":"Account","aggregate_id":")" + id + R"(","payload":)" + payload + "}";
}

struct backend {
  std::string name;  // embedded | jetstream
  std::string nats_url;
};

class runner {
 public:
  runner(backend b, fs::path dir) : _backend(std::move(b)), _dir(std::move(dir)) {
    fs::create_directories(_dir);
    stages::register_builtin_stages(_registry);
    if (auto ok = _registry.add(feed_descriptor()); !ok.ok()) std::abort();
  }

  // Runs the commands through a new node on the directory; false on any rejection.
  // `rejected_ok`: the commands are meant to be rejected (a probe that leaves the history as it is).
  bool run(std::vector<std::string> bodies, std::vector<double>* latencies_ms = nullptr,
           bool rejected_ok = false) {
    auto f = std::make_shared<feed>();
    f->bodies = std::move(bodies);
    f->admitted.resize(f->bodies.size());
    f->answered.resize(f->bodies.size());
    f->errors.resize(f->bodies.size());
    std::ostringstream y;
    y << "pipeline: cold_start\nsettings:\n  data_dir: " << (_dir / "data").string()
      << "\n  durability: relaxed\n  event_log: " << _backend.name << "\n";
    if (!_backend.nats_url.empty()) y << "  nats_url: " << _backend.nats_url << "\n";
    y << "aggregates:\n  Account: { program: " << ESFLOW_SOURCE_DIR
      << "/pipelines/programs/account.lua, snapshot_every: 100, gas: 100000, memory: 64MiB }\n"
      << "stages:\n  feed: { kind: bench.feed }\n  tenant: { kind: tenant.gate }\n"
      << "  decode: { kind: decode.command, max_payload: 1MiB }\n"
      << "  rehydrate: { kind: aggregate.rehydrate, key: message, concurrency: 8, cache_mb: 256 }\n"
      << "  decide: { kind: aggregate.decide, key: message, concurrency: 8 }\n"
      << "  commit: { kind: aggregate.commit, key: message, max_retries: 3 }\n"
      << "  answer: { kind: aggregate.answer }\n  ack: { kind: ack }\n"
      << "flow:\n  - feed -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> ack\n"
      << "  - \"*.error -> answer\"\n";
    auto spec = graph::load_pipeline_text(y.str(), "cold_start.yaml", _dir.string(), _registry);
    if (!spec.ok()) {
      std::fprintf(stderr, "pipeline: %s\n", spec.err().message.c_str());
      return false;
    }
    cli::serve_options so;
    so.registry = &_registry;
    so.start = false;
    so.prepare = [f](esflow::service_registry& services) { services.put<feed>("", f); };
    std::vector<graph::pipeline_spec> specs;
    specs.push_back(std::move(spec).value());
    auto served = cli::serve_loaded(std::move(specs), so);
    if (!served.ok()) {
      std::fprintf(stderr, "serve: %s\n", served.err().to_string().c_str());
      return false;
    }
    cli::start_served(*served.value());
    auto& n = *cli::served_host(*served.value()).nodes().front();
    const bool finished = n.wait_finished(clock_type::now() + std::chrono::minutes(10));
    ignore(cli::stop_served(*served.value()));
    served.value().reset();
    if (!finished) return false;
    for (std::size_t i = 0; i < f->errors.size(); ++i) {
      if (!f->errors[i].empty() && !(rejected_ok && f->errors[i].rfind("insufficient_funds", 0) == 0)) {
        std::fprintf(stderr, "command %zu rejected: %s\n", i, f->errors[i].c_str());
        return false;
      }
      if (latencies_ms)
        latencies_ms->push_back(
            std::chrono::duration<double, std::milli>(f->answered[i] - f->admitted[i]).count());
    }
    return true;
  }

  // One command to `id` on a cold node, three times; the median in ms. With
  // `fresh`, each time to a new aggregate (`id`-0, -1, -2) that opens.
  double first_command_ms(const std::string& id, bool fresh = false) {
    std::vector<double> samples;
    for (int i = 0; i < 3; ++i) {
      const auto body =
          fresh ? command(id + "-" + std::to_string(i), R"({"type":"open_account","initial_balance":0})")
                : command(id, R"({"type":"deposit","amount":1})");
      if (!run({body}, &samples)) return -1;
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
  }

  bool write_history(const std::string& id, std::size_t events) {  // NOLINT: one call per history
    std::vector<std::string> bodies;
    bodies.reserve(events);
    bodies.push_back(command(id, R"({"type":"open_account","initial_balance":0})"));
    for (std::size_t i = 1; i < events; ++i)
      bodies.push_back(command(id, R"({"type":"deposit","amount":1})"));
    return run(std::move(bodies));
  }

  // Median of 200 snapshot reads (the local part of every cold read).
  double snapshot_read_us(const std::string& id) {
    auto store = storage::node_store::shared(
        {.data_dir = (_dir / "data").string(), .mode = storage::durability::relaxed});
    if (!store.ok()) return -1;
    std::vector<double> s;
    for (int i = 0; i < 200; ++i) {
      const auto t0 = clock_type::now();
      auto snap = store.value()->snapshots().get("acme", "Account", id);
      s.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
      if (!snap.ok()) return -1;
    }
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  }

 private:
  backend _backend;
  fs::path _dir;
  graph::kind_registry _registry;
};

// Median round trip of one direct get (last message of a subject) on its own connection.
double direct_get_us(const std::string& url, const std::string& subject) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return -1;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, nullptr) != NATS_OK) {
    natsConnection_Destroy(nc);
    return -1;
  }
  std::vector<double> s;
  for (int i = 0; i < 200; ++i) {
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = subject.c_str();
    natsMsg* m = nullptr;
    const auto t0 = clock_type::now();
    auto st = js_DirectGetMsg(&m, js, "AGGREGATE_EVENTS", nullptr, &o);
    s.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    if (m != nullptr) natsMsg_Destroy(m);
    if (st != NATS_OK) break;
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  std::sort(s.begin(), s.end());
  return s.empty() ? -1 : s[s.size() / 2];
}

std::vector<std::size_t> histories() {
  std::vector<std::size_t> out;
  const char* env = std::getenv("ESFLOW_COLD_HISTORIES");
  std::string text = env != nullptr && *env != '\0' ? env : "100,1000,10000,100000,100099";
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoul(item));
  return out;
}

int run_backend(const backend& b, const fs::path& dir) {
  runner r(b, dir);
  std::printf("\n%s\n", b.name.c_str());
  // Every history is written first, so each row is measured on the same
  // store (its size, files and compactions): what differs is the history.
  std::vector<std::size_t> hs = histories();
  for (auto h : hs) {
    const auto t0 = clock_type::now();
    if (!r.write_history("acc-h" + std::to_string(h), h)) return 1;
    std::printf("wrote %zu events in %.1f s\n", h,
                std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  // One restart to let the store settle (RocksDB compacts what the writes left).
  if (!r.run({command("acc-h" + std::to_string(hs.front()), R"({"type":"deposit","amount":1})")})) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // Rounds over the histories, one restart per sample; the median of 3. The
  // probe is a withdrawal the balance refuses: the whole cold path (snapshot,
  // events after it, decide) without adding an event, so every sample sees
  // the same history and tail.
  std::vector<std::vector<double>> samples(hs.size());
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < hs.size(); ++i) {
      std::vector<double> one;
      if (!r.run({command("acc-h" + std::to_string(hs[i]), R"({"type":"withdraw","amount":100000000})")},
                 &one, true))
        return 1;
      samples[i].push_back(one.front());
    }
  }
  std::printf("%-10s %14s\n", "history", "first cmd ms");
  double first = 0;
  for (std::size_t i = 0; i < hs.size(); ++i) {
    std::sort(samples[i].begin(), samples[i].end());
    const double ms = samples[i][1];
    if (first == 0) first = ms;
    std::printf("%-10zu %14.2f   (%.2fx the first row)\n", hs[i], ms, ms / first);
  }
  std::printf("ceiling   new aggregate after restart: %.2f ms\n", r.first_command_ms("acc-new", true));
  std::printf("ceiling   one snapshot read (RocksDB): %.1f us\n", r.snapshot_read_us("acc-h100"));
  if (!b.nats_url.empty())
    std::printf("ceiling   one direct get round trip:   %.1f us\n",
                direct_get_us(b.nats_url, "tenant.acme.aggregate.Account.acc-h100"));
  return 0;
}

}  // namespace
}  // namespace esflow::aggregate

int main() {
  namespace fs = std::filesystem;
  using namespace esflow::aggregate;
  const auto root = fs::temp_directory_path() / ("esflow-bench-cold-" + std::to_string(::getpid()));
  fs::create_directories(root);
  std::printf("first command after a restart (median of 3 restarts), snapshot every 100\n");
  int rc = run_backend({"embedded", ""}, root / "embedded");
  if (rc == 0) {
    esflow::nats::testing::nats_server_fixture server;
    if (!server.start()) {
      std::printf("\njetstream: skipped (nats-server did not start)\n");
    } else {
      rc = run_backend({"jetstream", server.url()}, root / "jetstream");
    }
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}
