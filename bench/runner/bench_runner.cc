// bench_runner: the runner node's figures, each beside its ceiling measured
// in the same run (bench/README.md "Runner"). Parts (ESFLOW_RBENCH=a,b;
// default all):
//   commit     the saga commit's write (record + outbox item + marker +
//              checkpoint) with fsync: through the commit pool from many
//              in-flight inputs vs one writer, one WriteBatch + fsync at a time
//   effects    effect commands through pipelines/runner-effect.yaml (log
//              provider) vs the raw publish rate into WORKFLOW_COMMANDS
//   dispatch   outbox effect items through the relay vs the same raw publish
//   inputs     saga inputs end to end (event log -> saga.follow -> ... ->
//              saga.commit) for a saga that only counts, and each stage's
//              latency from /admin/graph, vs the saga commit's write through
//              the commit pool (its ceiling)
//   transfers  the Transfer example through the shipped aggregate +
//              runner-saga + runner-effect pipelines (fsync, HTTP clients) vs
//              the aggregate node's commands/s with the same clients
#include "cli/app.h"
#include "stages/runner/runner_service.h"
#include "storage/commit_pool.h"
#include "storage/keys.h"
#include "storage/node_store.h"
#include "storage/workflow_stream.h"
#include "transport/node_host.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::runner {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using nlohmann::json;

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stoul(v) : fallback;
}

bool part_wanted(const std::string& part) {
  const char* v = std::getenv("ESFLOW_RBENCH");
  if (v == nullptr || *v == '\0') return true;
  return ("," + std::string(v) + ",").find("," + part + ",") != std::string::npos;
}

// A position, 0 when the read failed (figures only).
std::uint64_t or_zero(const result<std::uint64_t>& r) { return r.ok() ? r.value() : 0; }

// perf stat --control: with ESFLOW_BENCH_PERF_CTL naming perf's control fifo
// and ESFLOW_RBENCH_PERF_PHASE naming a measured phase (ceiling, transfers),
// counting runs only while that phase is measured, so `perf stat -D -1
// --control fifo:...` counts exactly that phase (bench/README.md).
void perf_phase(const char* phase, bool on) {
  const char* ctl = std::getenv("ESFLOW_BENCH_PERF_CTL");
  const char* want = std::getenv("ESFLOW_RBENCH_PERF_PHASE");
  if (ctl == nullptr || want == nullptr || std::string(want) != phase) return;
  std::ofstream f(ctl);
  f << (on ? "enable\n" : "disable\n");
}

// CPU seconds this process used so far (all threads: node and load generator alike).
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

// CPU seconds the calling thread used so far.
double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string account_key(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "acc-%06zu", i);
  return buf;
}

// ------------------------------------------------------------------ commit

// The write of one saga input: record, one outbox item, the input's marker, the checkpoint.
void fill_saga_write(storage::node_store& store, storage::write_set& ws, std::size_t i) {
  const auto id = "t-" + std::to_string(i);
  store.sagas().put(ws, "acme", "Transfer", id,
                    R"({"state":{"amount":25,"from":"acc-a","step":"withdrawing","to":"acc-b"},"done":false,)"
                    R"("schedules":{"timeout":1765000000000},"inputs":1})");
  store.outbox().put(ws, "acme", "command", "w" + std::to_string(i),
                     R"({"kind":"command","aggregate_type":"Account","aggregate_id":"acc-a","payload":)"
                     R"({"type":"withdraw","amount":25},"saga":"Transfer","correlation_id":")" +
                         id + "\"}");
  std::string marker;
  storage::keys::put_u64_be(marker, 1'900'000'000'000ULL);
  storage::keyspace(store.database(), storage::cf::dedupe)
      .put(ws, storage::keys::dedupe("acme", "saga:Transfer:ev-" + id), marker);
  store.checkpoints().put(ws, {}, "runner:bench:log", i);
}

// The saga commit's write through the commit pool: `n` sets (indices from
// `first`), at most `in_flight` outstanding, as saga.commit drives it: sets/s.
double pooled_commit_rate(const std::shared_ptr<storage::node_store>& store, std::size_t n,
                          std::size_t in_flight, std::size_t first = 0) {
  storage::commit_pool pool(store);
  std::mutex mu;
  std::condition_variable cv;
  std::size_t outstanding = 0, done = 0;
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < n; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return outstanding < in_flight; });
      ++outstanding;
    }
    auto ws = store->begin();
    fill_saga_write(*store, ws, first + i);
    pool.submit(std::move(ws), [&](status st) {
      if (!st.ok()) std::fprintf(stderr, "commit: %s\n", st.err().to_string().c_str());
      std::lock_guard lock(mu);
      --outstanding;
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == n; });
  }
  const double rate = static_cast<double>(n) / seconds_since(t0);
  pool.stop();
  return rate;
}

int run_commit(const fs::path& root) {
  const std::size_t single = env_size("ESFLOW_RBENCH_SINGLE", 2000);
  const std::size_t pooled = env_size("ESFLOW_RBENCH_POOLED", 40000);
  const std::size_t in_flight = env_size("ESFLOW_RBENCH_IN_FLIGHT", 256);
  std::printf("\n== saga commit, fsync: commit pool (%zu in flight) vs one writer\n", in_flight);
  double single_rate = 0;
  {
    auto store = storage::node_store::open({.data_dir = (root / "commit-single").string()});
    if (!store.ok()) return 1;
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < single; ++i) {
      auto ws = store.value()->begin();
      fill_saga_write(*store.value(), ws, i);
      if (!store.value()->commit(ws).ok()) return 1;
    }
    single_rate = static_cast<double>(single) / seconds_since(t0);
    std::printf("ceiling: one writer, WriteBatch + fsync each: %9.0f commits/s (%zu)\n", single_rate, single);
  }
  auto store = storage::node_store::open({.data_dir = (root / "commit-pool").string()});
  if (!store.ok()) return 1;
  const double rate = pooled_commit_rate(store.value(), pooled, in_flight);
  std::printf(
      "saga commit through the pool: %9.0f commits/s (%zu)   = %.1fx the one-writer ceiling (goal >= 10x)\n",
      rate, pooled, rate / single_rate);
  return 0;
}

// ------------------------------------------------------- effects, dispatch

// The raw publish rate into a stream: `threads` publishers, each waiting for its ack.
double raw_publish(storage::workflow_stream& stream, std::size_t n, std::size_t threads,
                   const std::string& tag) {
  std::atomic<std::size_t> next{0};
  const auto t0 = clock_type::now();
  std::vector<std::thread> ts;
  for (std::size_t t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (auto i = next++; i < n; i = next++) {
        const auto id = "e" + tag + std::to_string(i);
        json body = {{"tenant_id", "acme"},
                     {"command_id", id},
                     {"effect", "notify"},
                     {"payload", {{"n", i}}},
                     {"metadata", {{"saga", "Transfer"}}},
                     {"correlation_id", "t-" + std::to_string(i)}};
        storage::publish_request req{
            "tenant.acme.effect.notify", "acme:" + id, {{"tenant-id", "acme"}}, body.dump(), nullptr};
        if (!storage::publish_and_wait(stream, std::move(req)).ok()) std::fprintf(stderr, "publish failed\n");
      }
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(n) / seconds_since(t0);
}

std::shared_ptr<runner_service> runner_of(cli::served_nodes& served, const fs::path& dir,
                                          const std::string& pipeline) {
  return cli::served_services(served).find<runner_service>(
      "runner:" + storage::normalise_data_dir(dir.string()) + ":" + pipeline);
}

cli::serve_options bench_serve(const fs::path& dir, bool start = true) {
  cli::serve_options o;
  o.overrides.data_dir = dir.string();
  o.overrides.http = "127.0.0.1:0";
  o.start = start;
  return o;
}

int run_effects(const fs::path& root) {
  const std::size_t n = env_size("ESFLOW_RBENCH_EFFECTS", 20000);
  std::printf("\n== effects: %zu effect commands through runner-effect.yaml (log provider, fsync)\n", n);
  const auto dir = root / "effects";
  double ceiling = 0;
  {
    // Pre-publish (also the ceiling): the stream as the relay would fill it.
    auto served = cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/runner-effect.yaml"},
                                   bench_serve(dir, false));
    if (!served.ok()) return std::fprintf(stderr, "%s\n", served.err().to_string().c_str()), 1;
    auto svc = runner_of(*served.value(), dir, "runner-effect");
    if (!svc) return 1;
    ceiling = raw_publish(svc->commands(), n, 32, "");
    std::printf("ceiling: raw publish into WORKFLOW_COMMANDS, 32 publishers: %9.0f msgs/s\n", ceiling);
    auto head = svc->commands().last_position();
    const auto t0 = clock_type::now();
    cli::start_served(*served.value());
    while (svc->commands_tracker().watermark() < head.value() && seconds_since(t0) < 300)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const double s = seconds_since(t0);
    std::printf(
        "effect path (gate, log provider, result publish, done): %9.0f effects/s (%.2f s)   ratio %.2f\n",
        static_cast<double>(n) / s, s, static_cast<double>(n) / s / ceiling);
    ignore(cli::stop_served(*served.value()));
  }
  return 0;
}

int run_dispatch(const fs::path& root) {
  const std::size_t n = env_size("ESFLOW_RBENCH_DISPATCH", 20000);
  std::printf("\n== outbox dispatch: %zu effect items through the relay (runner-saga.yaml, fsync)\n", n);
  const auto dir = root / "dispatch";
  auto served = cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/runner-saga.yaml"},
                                 bench_serve(dir, false));
  if (!served.ok()) return std::fprintf(stderr, "%s\n", served.err().to_string().c_str()), 1;
  auto svc = runner_of(*served.value(), dir, "runner");
  if (!svc) return 1;
  for (std::size_t first = 0; first < n; first += 1000) {
    auto ws = svc->store().begin();
    for (std::size_t i = first; i < std::min(n, first + 1000); ++i) {
      const auto id = "w" + std::to_string(i);
      json item = {{"kind", "effect"},     {"tenant_id", "acme"},
                   {"saga", "Transfer"},   {"correlation_id", "t-" + std::to_string(i)},
                   {"command_id", id},     {"effect", "notify"},
                   {"payload", {{"n", i}}}};
      svc->store().outbox().put(ws, "acme", "effect", id, item.dump());
    }
    if (!svc->store().commit(ws).ok()) return 1;
  }
  const auto head0 = or_zero(svc->commands().last_position());
  const auto t0 = clock_type::now();
  const double cpu0 = cpu_seconds();
  cli::start_served(*served.value());
  while (seconds_since(t0) < 300) {
    auto left = svc->store().outbox().list({}, 1);
    if (left.ok() && left->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double s = seconds_since(t0);
  const auto published = or_zero(svc->commands().last_position()) - head0;
  std::printf(
      "relay (scan, publish to WORKFLOW_COMMANDS, delete): %9.0f items/s (%.2f s, %llu published, "
      "%.1f us of CPU each)\n",
      static_cast<double>(n) / s, s, static_cast<unsigned long long>(published),
      (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n));
  const double ceiling = raw_publish(svc->commands(), n, 32, "raw");
  std::printf("ceiling (same run): raw publish, 32 publishers: %9.0f msgs/s   ratio %.2f\n", ceiling,
              static_cast<double>(n) / s / ceiling);
  ignore(cli::stop_served(*served.value()));
  return 0;
}

// --------------------------------------------------------------- transfers

// The HTTP clients run in a load generator of their own: this binary again,
// with `--load-generator` (load_generator_main), so the node's CPU time
// (getrusage of this process) and the clients' (the child's own) are apart,
// as over-the-wire figures need (bench/README.md "Runner").

struct drive_result {
  std::size_t accepted = 0, other = 0;
  double seconds = 0;      // the load generator's, from its first request to its last answer
  double cpu_seconds = 0;  // the load generator's process
};

// What the load generator sends: the i-th request's body.
struct workload {
  std::string kind;  // open | deposit-withdraw | transfers
  std::size_t accounts = 0;
  long long initial_balance = 0;
};

json command(const std::string& type, const std::string& id, json payload) {
  return {{"aggregate_type", type}, {"aggregate_id", id}, {"payload", std::move(payload)}};
}

json body_of(const workload& w, std::size_t i) {
  if (w.kind == "open")
    return command("Account", account_key(i),
                   {{"type", "open_account"}, {"initial_balance", w.initial_balance}});
  if (w.kind == "deposit-withdraw")
    return command("Account", account_key(i % w.accounts),
                   {{"type", i % 2 ? "withdraw" : "deposit"}, {"amount", 1}});
  return command("Transfer", "t-" + std::to_string(i),
                 {{"type", "request_transfer"},
                  {"from", account_key(i % w.accounts)},
                  {"to", account_key((i * 7 + 1) % w.accounts)},
                  {"amount", 1}});
}

// The child's side: `clients` keep-alive HTTP clients post the workload's
// bodies for i in [0, n) (or for `seconds` when n == 0). It writes `ready`,
// waits for a line on stdin (the parent's clock starts there), and ends with
// one line: accepted, other, seconds, its CPU seconds.
int load_generator_main(int argc, char** argv) {
  if (argc != 9) return std::fprintf(stderr, "load generator: 7 arguments expected\n"), 2;
  const std::string url = argv[2];
  const std::size_t clients = std::stoul(argv[3]), n = std::stoul(argv[4]);
  const double seconds = std::stod(argv[5]);
  const workload w{argv[6], std::stoul(argv[7]), std::stoll(argv[8])};
  std::printf("ready\n");
  std::fflush(stdout);
  char go[8];
  if (std::fgets(go, sizeof go, stdin) == nullptr) return 1;
  std::atomic<std::size_t> next{0}, accepted{0}, other{0};
  const auto t0 = clock_type::now();
  const auto until =
      t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> ts;
  for (std::size_t c = 0; c < clients; ++c)
    ts.emplace_back([&] {
      httplib::Client cl(url);
      cl.set_keep_alive(true);
      cl.set_tcp_nodelay(true);
      cl.set_read_timeout(30, 0);
      for (auto i = next++; n == 0 ? clock_type::now() < until : i < n; i = next++) {
        const auto body = body_of(w, i).dump();
        auto r = cl.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body, "application/json");
        for (int retry = 0; r && r->status == 503 && retry < 1000; ++retry) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          r = cl.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body, "application/json");
        }
        if (r && r->status == 200)
          ++accepted;
        else
          ++other;
      }
    });
  for (auto& t : ts) t.join();
  std::printf("%zu %zu %.6f %.6f\n", accepted.load(), other.load(), seconds_since(t0), cpu_seconds());
  return 0;
}

// The parent's side: runs the load generator, calls `started` when its clients are about to
// send, and returns its figures (nullopt when it could not run).
template <typename F>
std::optional<drive_result> drive(const std::string& url, std::size_t clients, std::size_t n, double seconds,
                                  const workload& w, F&& started) {
  int to_child[2], from_child[2];
  if (::pipe(to_child) != 0) return std::nullopt;
  if (::pipe(from_child) != 0) {
    ::close(to_child[0]);
    ::close(to_child[1]);
    return std::nullopt;
  }
  const std::vector<std::string> args = {"bench_runner",
                                         "--load-generator",
                                         url,
                                         std::to_string(clients),
                                         std::to_string(n),
                                         std::to_string(seconds),
                                         w.kind,
                                         std::to_string(w.accounts),
                                         std::to_string(w.initial_balance)};
  // Built before the fork: the child of a threaded process only calls what is async-signal-safe.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(to_child[0], 0);
    ::dup2(from_child[1], 1);
    ::close(to_child[1]);
    ::close(from_child[0]);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  std::optional<drive_result> out;
  if (pid > 0) {
    FILE* in = ::fdopen(from_child[0], "r");
    char line[256];
    if (in != nullptr && std::fgets(line, sizeof line, in) != nullptr && std::string(line) == "ready\n") {
      started();
      if (::write(to_child[1], "go\n", 3) == 3 && std::fgets(line, sizeof line, in) != nullptr) {
        drive_result r;
        if (std::sscanf(line, "%zu %zu %lf %lf", &r.accepted, &r.other, &r.seconds, &r.cpu_seconds) == 4)
          out = r;
      }
    }
    ::close(to_child[1]);
    if (in != nullptr)
      std::fclose(in);
    else
      ::close(from_child[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out.reset();
  } else {
    ::close(to_child[1]);
    ::close(from_child[0]);
  }
  if (!out) std::fprintf(stderr, "the load generator failed\n");
  return out;
}

drive_result drive_or_none(const std::string& url, std::size_t clients, std::size_t n, const workload& w) {
  return drive(url, clients, n, 0, w, [] {}).value_or(drive_result{});
}

// ------------------------------------------------------------------ inputs

constexpr const char* k_count_program = R"(
function on_event(state, input)
  local n = 0
  if state ~= nil then n = state.n end
  return {state = {n = n + 1}}
end
)";

// The saga path of runner-saga.yaml (follow -> ... -> commit -> ack) with a saga that only counts.
constexpr const char* k_count_pipeline = R"(pipeline: count
settings:
  http: 127.0.0.1:0
  data_dir: ./data
  durability: fsync
  event_log: embedded
  tenancy: multi
  max_in_flight: 4096
sagas:
  Count:
    program: count.lua
    triggers:
      - { aggregate_type: Account, events: [account_opened] }
    correlate_by: aggregate_id
stages:
  follow:   { kind: saga.follow, batch: 512, poll: 10ms }
  tenant:   { kind: tenant.gate, key: message, concurrency: 4 }
  dedupe:   { kind: saga.dedupe, key: message, concurrency: 4 }
  load:     { kind: saga.load, key: message, concurrency: 4 }
  run:      { kind: saga.run, key: message, concurrency: 4 }
  commit:   { kind: saga.commit, key: message }
  ack:      { kind: ack }
flow:
  - follow -> tenant -> dedupe -> load -> run -> commit -> ack
  - "tenant.error -> ack"
  - "dedupe.error -> ack"
  - "load.error -> ack"
  - "run.error -> ack"
  - "commit.error -> ack"
)";

int run_inputs(const fs::path& root) {
  const std::size_t n = env_size("ESFLOW_RBENCH_INPUTS", 20000);
  std::printf("\n== saga inputs: %zu account_opened events through the saga path (a counting saga, fsync)\n",
              n);
  const auto dir = root / "inputs";
  {
    // The events: n accounts opened through the aggregate node (32 HTTP clients).
    auto served =
        cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml"}, bench_serve(dir));
    if (!served.ok()) return std::fprintf(stderr, "%s\n", served.err().to_string().c_str()), 1;
    auto r = drive_or_none(cli::served_url(*served.value()), 32, n, {"open", n, 1});
    if (r.accepted != n) return std::fprintf(stderr, "only %zu of %zu accounts opened\n", r.accepted, n), 1;
    ignore(cli::stop_served(*served.value()));
  }
  std::ofstream(root / "count.lua") << k_count_program;
  const auto file = root / "count.yaml";
  std::ofstream(file) << k_count_pipeline;
  auto served = cli::serve_nodes({file.string()}, bench_serve(dir, false));
  if (!served.ok()) return std::fprintf(stderr, "%s\n", served.err().to_string().c_str()), 1;
  auto svc = runner_of(*served.value(), dir, "count");
  if (!svc) return 1;
  const auto head = or_zero(svc->log().last_position());
  const auto cp = svc->checkpoint_name("log");
  const auto t0 = clock_type::now();
  const double cpu0 = cpu_seconds();
  cli::start_served(*served.value());
  while (seconds_since(t0) < 300) {
    auto at = svc->store().checkpoints().get({}, cp);
    if (at.ok() && at.value().value_or(0) >= head) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double s = seconds_since(t0);
  const double rate = static_cast<double>(n) / s;
  std::printf("saga path end to end: %9.0f inputs/s (%.2f s, %.1f us of CPU each)\n", rate, s,
              (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(n));
  // Each stage's latency (start to finish) from the live graph.
  httplib::Client c(cli::served_url(*served.value()));
  auto graph = c.Get("/admin/graph?pipeline=count");
  if (graph && graph->status == 200) {
    const auto g = json::parse(graph->body, nullptr, false);
    for (const auto& st : g.value("stages", json::array())) {
      const auto stats = st.value("stats", json::object());
      std::printf("  %-8s %-14s in %8llu  p50 %8.1f us  p99 %8.1f us  (%s)\n", st.value("name", "").c_str(),
                  st.value("kind", "").c_str(), static_cast<unsigned long long>(stats.value("in", 0ULL)),
                  stats.value("p50_us", 0.0), stats.value("p99_us", 0.0),
                  st.value("concurrency", "").c_str());
    }
  }
  storage::node_store_options so;
  so.data_dir = dir.string();
  so.mode = storage::durability::fsync;
  auto store = storage::node_store::shared(so);
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.err().to_string().c_str()), 1;
  const double ceiling = pooled_commit_rate(store.value(), n, 256, 10'000'000);
  std::printf(
      "ceiling (same run): the saga commit's write through the commit pool, 256 in flight: %9.0f/s   "
      "ratio %.2f\n",
      ceiling, rate / ceiling);
  ignore(cli::stop_served(*served.value()));
  return 0;
}

// The work a transfer makes: each stage's messages per transfer and its busy time (start to
// finish), from /admin/graph of the three pipelines.
std::string transfer_stage_figures(const std::string& url, std::size_t finished) {
  std::string out;
  httplib::Client c(url);
  for (const char* p : {"aggregate", "runner", "runner-effect"}) {
    auto graph = c.Get(std::string("/admin/graph?pipeline=") + p);
    if (!graph || graph->status != 200) continue;
    const auto g = json::parse(graph->body, nullptr, false);
    for (const auto& st : g.value("stages", json::array())) {
      const auto stats = st.value("stats", json::object());
      const auto in = stats.value("in", 0ULL);
      if (in == 0) continue;
      char line[256];
      std::snprintf(line, sizeof line, "    %-9s %-10s %-16s %5.2f per transfer  p50 %7.1f us\n", p,
                    st.value("name", "").c_str(), st.value("kind", "").c_str(),
                    static_cast<double>(in) / static_cast<double>(std::max<std::size_t>(finished, 1)),
                    stats.value("p50_us", 0.0));
      out += line;
    }
  }
  return out;
}

double cores() { return std::max(1U, std::thread::hardware_concurrency()); }

// The share of the machine's cores kept busy at `rate` units/s costing `us` of CPU each.
double busy_share(double rate, double us) { return rate * us / 1e6 / cores(); }

// CPU seconds used so far by this process's live threads, summed by thread name (utime + stime of
// /proc/self/task/*/stat). A thread that ends between two snapshots drops out of the difference.
std::map<std::string, double> cpu_by_thread_name() {
  std::map<std::string, double> out;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ... : the name sits between the first '(' and the last ')'.
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int skipped = 0; skipped < 11; ++skipped) rest >> field;  // fields 3 (state) to 13
    unsigned long long utime = 0, stime = 0;
    if (!(rest >> utime >> stime)) continue;  // fields 14 and 15
    out[line.substr(open + 1, close - open - 1)] += static_cast<double>(utime + stime) / tick;
  }
  return out;
}

// "name us, ..." per transfer for the threads that used at least 1% of the node's CPU between
// the two snapshots, busiest first.
std::string cpu_by_thread_per_transfer(const std::map<std::string, double>& before,
                                       const std::map<std::string, double>& after, std::size_t transfers,
                                       double node_us) {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, seconds] : after) {
    const auto it = before.find(name);
    const double used = seconds - (it == before.end() ? 0.0 : it->second);
    const double us = used * 1e6 / static_cast<double>(std::max<std::size_t>(transfers, 1));
    if (us >= 0.01 * node_us) rows.emplace_back(us, name);
  }
  std::sort(rows.rbegin(), rows.rend());
  std::string out = "  the node's CPU per transfer by thread (us, 10 ms ticks):";
  for (const auto& [us, name] : rows)
    out += " " + name + " " + std::to_string(static_cast<int>(us + 0.5)) + ",";
  if (!rows.empty()) out.pop_back();
  return out + "\n";
}

// One round's transfer phase: its rate, CPU per transfer (the node's and the load generator's),
// the log's commits meanwhile, and each stage's work per transfer.
struct transfer_round {
  std::size_t requested = 0, finished = 0;
  double request_seconds = 0, seconds = 0, node_us = 0, load_us = 0, watch_us = 0;
  std::uint64_t commits = 0;
  std::string stage_figures, thread_figures;
  double rate() const { return static_cast<double>(finished) / seconds; }
  // The share of the machine's cores the node and the load generator kept busy.
  double busy() const { return busy_share(rate(), node_us + load_us); }
};

// The aggregate node alone under the same clients: commands/s and CPU per command.
struct ceiling_run {
  double rate = 0, node_us = 0, load_us = 0;  // CPU per command: the node's, the load generator's
  double busy() const { return busy_share(rate, node_us + load_us); }
};

// "mean (min-max)" with `digits` after the point.
std::string mean_and_range(const std::vector<double>& v, int digits) {
  if (v.empty()) return "-";
  double sum = 0;
  for (double x : v) sum += x;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  char out[128];
  std::snprintf(out, sizeof out, "%.*f (%.*f-%.*f)", digits, sum / static_cast<double>(v.size()), digits, *lo,
                digits, *hi);
  return out;
}

int run_transfers(const fs::path& root) {
  const std::size_t clients = env_size("ESFLOW_RBENCH_CLIENTS", 32);
  const std::size_t transfers = env_size("ESFLOW_RBENCH_TRANSFERS", 5000);
  const std::size_t rounds = std::max<std::size_t>(1, env_size("ESFLOW_RBENCH_ROUNDS", 3));
  const std::size_t accounts = 2000;
  const auto pipelines = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
  std::printf(
      "\n== transfers: %zu rounds of %zu through aggregate + runner-saga + runner-effect (embedded, fsync), "
      "%zu HTTP clients in a load generator process\n",
      rounds, transfers, clients);
  auto open_all = [&](const std::string& url) {
    return drive_or_none(url, clients, accounts, {"open", accounts, 1'000'000});
  };
  // Ceilings and rounds alternate (ceiling, round, ceiling, ...), each on a fresh node, and a
  // round's ratio uses the ceilings on both sides of it. This VM's speed drifts 20-30% within
  // minutes; one ceiling measured only before the transfers put that drift into the ratio, and one
  // round alone is within that noise of the next.
  const auto ceiling_seconds = std::max<std::size_t>(1, env_size("ESFLOW_RBENCH_CEILING_S", 10) / 2);
  auto measure_ceiling = [&](std::size_t index) -> std::optional<ceiling_run> {
    const auto dir = root / ("aggregate-alone-" + std::to_string(index));
    auto served = cli::serve_nodes({pipelines + "aggregate.yaml"}, bench_serve(dir));
    if (!served.ok()) return std::nullopt;
    const auto url = cli::served_url(*served.value());
    open_all(url);
    double cpu0 = 0;
    auto r =
        drive(url, clients, 0, static_cast<double>(ceiling_seconds), {"deposit-withdraw", accounts, 0}, [&] {
          cpu0 = cpu_seconds();
          perf_phase("ceiling", true);
        });
    perf_phase("ceiling", false);
    const double node_cpu = cpu_seconds() - cpu0;
    ignore(cli::stop_served(*served.value()));
    if (!r || r->accepted == 0) return std::nullopt;
    const auto per = [&](double cpu) { return cpu * 1e6 / static_cast<double>(r->accepted); };
    ceiling_run c{static_cast<double>(r->accepted) / r->seconds, per(node_cpu), per(r->cpu_seconds)};
    std::printf(
        "ceiling %zu: the aggregate node alone, deposits/withdrawals: %9.0f commands/s (%zu commands; CPU "
        "each: %.0f us of the node + %.0f us of the load generator = %.0f us; the cores %.0f%% busy)\n",
        index, c.rate, r->accepted, c.node_us, c.load_us, c.node_us + c.load_us, 100 * c.busy());
    return c;
  };
  auto run_round = [&](std::size_t index) -> std::optional<transfer_round> {
    const auto dir = root / ("transfers-" + std::to_string(index));
    auto served = cli::serve_nodes(
        {pipelines + "aggregate.yaml", pipelines + "runner-saga.yaml", pipelines + "runner-effect.yaml"},
        bench_serve(dir));
    if (!served.ok()) return std::fprintf(stderr, "%s\n", served.err().to_string().c_str()), std::nullopt;
    auto svc = runner_of(*served.value(), dir, "runner");
    if (!svc) return std::nullopt;
    const auto url = cli::served_url(*served.value());
    open_all(url);
    const auto head0 = or_zero(svc->log().last_position());
    auto t0 = clock_type::now();
    double cpu0 = 0;
    std::map<std::string, double> threads0;
    auto sent = drive(url, clients, transfers, 0, {"transfers", accounts, 0}, [&] {
      threads0 = cpu_by_thread_name();
      t0 = clock_type::now();
      cpu0 = cpu_seconds();
      perf_phase("transfers", true);
    });
    if (!sent) return std::nullopt;
    // Done when every transfer has its transfer_completed or transfer_failed in the log. Reading
    // the log is the bench's work, not the node's: its CPU (this thread's) is left out of the
    // node's CPU per transfer, as the ceiling has no such reader.
    transfer_round out;
    auto after = head0;
    double watch_cpu = 0;
    while (out.finished < sent->accepted && seconds_since(t0) < 600) {
      const double watch0 = thread_cpu_seconds();
      auto page = svc->log().read_from(after, 4096);
      if (!page.ok()) break;
      for (const auto& pc : page.value()) {
        after = pc.position;
        for (const auto& e : pc.commit.events)
          if (e.event_type == "transfer_completed" || e.event_type == "transfer_failed") ++out.finished;
      }
      watch_cpu += thread_cpu_seconds() - watch0;
      // Every 20 ms: reading the log is the bench's own work (at every 5 ms, and at once after a
      // full page, it was ~1% of a transfer's CPU); the end is known to 20 ms.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    perf_phase("transfers", false);
    out.seconds = seconds_since(t0);
    const auto threads1 = cpu_by_thread_name();
    const auto per_transfer = [&](double cpu) {
      return cpu * 1e6 / static_cast<double>(std::max<std::size_t>(out.finished, 1));
    };
    out.node_us = per_transfer(cpu_seconds() - cpu0 - watch_cpu);
    out.load_us = per_transfer(sent->cpu_seconds);
    out.watch_us = per_transfer(watch_cpu);
    out.thread_figures = cpu_by_thread_per_transfer(threads0, threads1, out.finished, out.node_us);
    out.requested = sent->accepted;
    out.request_seconds = sent->seconds;
    out.commits = or_zero(svc->log().last_position()) - head0;
    // The per-stage figures come from the live node before it stops.
    out.stage_figures = transfer_stage_figures(url, out.finished);
    ignore(cli::stop_served(*served.value()));
    return out;
  };

  std::vector<ceiling_run> ceilings;
  auto first = measure_ceiling(0);
  if (!first) return 1;
  ceilings.push_back(*first);
  std::vector<double> ratios, cpu_quotients, node_quotients, busy_quotients;
  std::string last_stage_figures;
  for (std::size_t i = 1; i <= rounds; ++i) {
    auto round = run_round(i);
    if (!round) return 1;
    auto next = measure_ceiling(i);
    if (!next) return 1;
    ceilings.push_back(*next);
    const auto& before = ceilings[i - 1];
    const auto& after = ceilings[i];
    const auto mean = [&](double ceiling_run::*field) { return (before.*field + after.*field) / 2; };
    const double ceiling = mean(&ceiling_run::rate);
    const double command_node_us = mean(&ceiling_run::node_us);
    const double command_us = command_node_us + mean(&ceiling_run::load_us);
    const double ceilings_busy = (before.busy() + after.busy()) / 2;
    const double ratio = round->rate() / ceiling;
    const double quotient = (round->node_us + round->load_us) / command_us;
    ratios.push_back(ratio);
    cpu_quotients.push_back(quotient);
    node_quotients.push_back(round->node_us / command_node_us);
    // ratio = busy quotient / CPU quotient: how fully the transfers used the cores against the
    // ceilings, over what a transfer costs in commands.
    const double busy_quotient = round->busy() / ceilings_busy;
    busy_quotients.push_back(busy_quotient);
    std::printf(
        "round %zu: %zu requested (%.2f s to request), %zu finished in %.2f s: %9.0f transfers/s; %llu "
        "commits "
        "in the log (%.0f/s)\n"
        "  ceiling: mean of ceilings %zu and %zu: %9.0f commands/s (%.0f us of CPU each, %.0f us of them the "
        "node's)\n"
        "  transfers/s = %.3f of the aggregate's commands/s (goal >= 0.25)\n"
        "  CPU per transfer: %.0f us = %.2f commands of the aggregate alone, node and load generator (the "
        "goal "
        "needs <= 4.0); the node's alone: %.0f us = %.2f of its commands; the bench's reading of the log, "
        "%.0f us per transfer, left out\n"
        "  the cores %.0f%% busy against the ceilings' %.0f%%: ratio ~ %.2f (busy quotient) / %.2f (CPU "
        "quotient)\n",
        i, round->requested, round->request_seconds, round->finished, round->seconds, round->rate(),
        static_cast<unsigned long long>(round->commits), static_cast<double>(round->commits) / round->seconds,
        i - 1, i, ceiling, command_us, command_node_us, ratio, round->node_us + round->load_us, quotient,
        round->node_us, round->node_us / command_node_us, round->watch_us, 100 * round->busy(),
        100 * ceilings_busy, busy_quotient, quotient);
    std::fputs(round->thread_figures.c_str(), stdout);
    last_stage_figures = std::move(round->stage_figures);
  }
  std::printf(
      "transfers, %zu rounds: transfers/s = %s of the aggregate's commands/s (goal >= 0.25); CPU per "
      "transfer = %s commands (goal <= 4.0), the node's alone %s; busy quotient %s\n",
      rounds, mean_and_range(ratios, 3).c_str(), mean_and_range(cpu_quotients, 2).c_str(),
      mean_and_range(node_quotients, 2).c_str(), mean_and_range(busy_quotients, 2).c_str());
  std::printf("  the work a transfer makes (round %zu):\n", rounds);
  std::fputs(last_stage_figures.c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace esflow::runner

int main(int argc, char** argv) {
  using namespace esflow::runner;
  if (argc > 1 && std::string(argv[1]) == "--load-generator") return load_generator_main(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  const auto root = fs::temp_directory_path() / ("esflow-bench-runner-" + std::to_string(::getpid()));
  fs::create_directories(root);
  ::setenv("ESFLOW_DURABILITY", "fsync", 1);
  int rc = 0;
  if (rc == 0 && part_wanted("commit")) rc = run_commit(root);
  if (rc == 0 && part_wanted("effects")) rc = run_effects(root);
  if (rc == 0 && part_wanted("dispatch")) rc = run_dispatch(root);
  if (rc == 0 && part_wanted("inputs")) rc = run_inputs(root);
  if (rc == 0 && part_wanted("transfers")) rc = run_transfers(root);
  std::error_code ec;
  fs::remove_all(root, ec);
  return rc;
}
