// The aggregate node, stage by stage and end to end, with its ceilings in the
// same run.
//
//   tenant_gate            validate_tenant + make_trace_context (the gate's work)
//   decode                 decode_command + ids + request_hash + aggregate key (decode.command's work)
//   rehydrate/hit|miss     aggregate_service::rehydrate from the cache / from 20 stored events
//   decide                 aggregate_service::decide_command (Lua decide+apply, stamping)
//   commit/fsync|relaxed   event-log appends, 256 aggregates in flight, + cache update
//   pipeline/fsync|relaxed source.file (the bank workload) -> tenant -> decode -> rehydrate ->
//                          decide -> commit -> publish -> sink.null, one run; per-stage p50/p99 as counters
//   ceiling_*              raw simdjson parse, raw Lua call, raw RocksDB WriteBatch with/without fsync
//
// The workload (bench/README.md): ESFLOW_WORKLOAD (a JSONL file of the
// generator), else ESFLOW_WORKLOAD_GENERATOR (the generator script) is run
// once with --commands 20000.
#include "cli/app.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"
#include "schemas/ids.h"
#include "schemas/json_decode.h"
#include "stages/aggregate/aggregate_service.h"
#include "stages/builtin.h"
#include "storage/event_log_factory.h"
#include "storage/keys.h"
#include "transport/node_host.h"

#include <benchmark/benchmark.h>
#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <rocksdb/write_batch.h>
#include <simdjson.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unistd.h>

namespace esflow::aggregate {
namespace {

namespace fs = std::filesystem;

const char* k_command =
    R"({"tenant_id":"tenant-2","command_id":"58bbe5b7-3b7e-4c1b-9a56-0c0e3f1a2b3c","aggregate_type":"Account",)"
    R"("aggregate_id":"acc-03290","payload":{"type":"deposit","amount":6}})";

class bench_dir {
 public:
  bench_dir() {
    static int n = 0;
    _path = fs::temp_directory_path() /
            ("esflow-bench-agg-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::create_directories(_path);
  }
  ~bench_dir() {
    std::error_code ec;
    fs::remove_all(_path, ec);
  }
  std::string str() const { return _path.string(); }

 private:
  fs::path _path;
};

std::string account_program() { return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/account.lua"; }

std::shared_ptr<aggregate_service> open_service(const bench_dir& dir, storage::durability mode,
                                                benchmark::State& state) {
  aggregate_service_options o;
  auto store = storage::node_store::open({.data_dir = dir.str() + "/data", .mode = mode});
  if (!store.ok()) {
    state.SkipWithError(store.err().to_string().c_str());
    return nullptr;
  }
  storage::event_log_env env;
  env.store = store.value();
  auto log = storage::embedded_backend().make({}, env);
  if (!log.ok()) {
    state.SkipWithError(log.err().to_string().c_str());
    return nullptr;
  }
  o.store = store.value();
  o.log = log.value();
  o.aggregates = YAML::Load("Account: { program: " + account_program() + ", snapshot_every: 100 }");
  auto s = aggregate_service::open(o);
  if (!s.ok()) state.SkipWithError(s.err().to_string().c_str());
  return s.ok() ? s.value() : nullptr;
}

// --- per stage ------------------------------------------------------------------

void tenant_gate(benchmark::State& state) {
  for (auto _ : state) {
    auto ok = schemas::validate_tenant("tenant-2", false);
    auto trace =
        schemas::make_trace_context("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "corr-1");
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(trace);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(tenant_gate);

void decode(benchmark::State& state) {
  const std::string body = k_command;
  for (auto _ : state) {
    auto f = schemas::decode_command(body);
    if (!f.ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    auto& cmd = f->cmd;
    const bool same_tenant = cmd.tenant_id == "tenant-2";
    auto h = storage::request_hash(cmd.aggregate_type, cmd.aggregate_id, cmd.payload_json);
    auto key = aggregate_key("tenant-2", cmd.aggregate_type, cmd.aggregate_id);
    benchmark::DoNotOptimize(same_tenant);
    benchmark::DoNotOptimize(h);
    benchmark::DoNotOptimize(key);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(decode);

void append_events(aggregate_service& s, const std::string& id, int n) {
  for (int v = 0; v < n; ++v) {
    storage::append_request r{"t",
                              "Account",
                              id,
                              id + "-" + std::to_string(v),
                              static_cast<schemas::version_t>(v),
                              storage::request_hash("Account", id, std::to_string(v)),
                              {}};
    schemas::event e;
    e.event_id = schemas::new_uuid_v7();
    e.event_type = v == 0 ? "account_opened" : "deposited";
    e.payload_json =
        v == 0 ? R"({"initial_balance":0,"type":"account_opened"})" : R"({"amount":5,"type":"deposited"})";
    e.timestamp = schemas::now_timestamp();
    r.events.push_back(e);
    ignore(storage::append_and_wait(s.log(), r));
  }
}

void rehydrate(benchmark::State& state) {
  const bool hit = state.range(0) != 0;
  bench_dir dir;
  auto s = open_service(dir, storage::durability::relaxed, state);
  if (!s) return;
  append_events(*s, "acc-1", 20);
  const auto& type = *s->find_type("Account");
  runtime::sandbox sb;
  const auto key = aggregate_key("t", "Account", "acc-1");
  for (auto _ : state) {
    if (!hit) s->cache().invalidate(key);
    auto r = s->rehydrate("t", type, "acc-1", sb);
    if (!r.ok() || r->head.version != 20) {
      state.SkipWithError("rehydrate failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(hit ? "cache hit" : "cache miss: 20 events, no snapshot");
}
BENCHMARK(rehydrate)->ArgName("hit")->Arg(1)->Arg(0);

void decide(benchmark::State& state) {
  bench_dir dir;
  auto s = open_service(dir, storage::durability::relaxed, state);
  if (!s) return;
  const auto& type = *s->find_type("Account");
  runtime::sandbox sb;
  aggregate_context ctx;
  ctx.tenant = "t";
  ctx.cmd.aggregate_type = "Account";
  ctx.cmd.aggregate_id = "acc-1";
  ctx.cmd.command_id = "c-1";
  ctx.cmd.payload_json = R"({"type":"deposit","amount":6})";
  ctx.trace = schemas::make_trace_context("", "");
  ctx.version = 7;
  ctx.state_json = R"({"balance":100,"open":true})";
  for (auto _ : state) {
    if (!s->decide_command(type, sb, ctx).ok() || ctx.events.size() != 1) {
      state.SkipWithError("decide failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(decide);

// 256 aggregates, one append each in flight; the completion updates the cache
// as the commit stage does and hands the aggregate back.
void commit(benchmark::State& state) {
  const bool durable = state.range(0) != 0;
  bench_dir dir;
  auto s = open_service(dir, durable ? storage::durability::fsync : storage::durability::relaxed, state);
  if (!s) return;
  constexpr std::size_t k_aggregates = 256;
  std::vector<schemas::version_t> versions(k_aggregates, 0);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::size_t> done;
  bool failed = false;
  std::uint64_t total = 0;
  auto issue = [&](std::size_t a) {
    storage::append_request r;
    r.tenant_id = "t";
    r.aggregate_type = "Account";
    r.aggregate_id = "acc-" + std::to_string(a);
    r.command_id = schemas::new_uuid_v7();
    r.expected_version = versions[a];
    r.request_hash = storage::request_hash(r.aggregate_type, r.aggregate_id, r.command_id);
    schemas::event e;
    e.event_id = schemas::new_uuid_v7();
    e.event_type = "deposited";
    e.payload_json = R"({"amount":5,"type":"deposited"})";
    e.timestamp = schemas::now_timestamp();
    r.events.push_back(std::move(e));
    const auto key = aggregate_key("t", "Account", r.aggregate_id);
    s->log().append(std::move(r), [&, a, key](result<storage::append_result> res) {
      if (res.ok())
        s->cache().commit(key,
                          state_head{res->last_version, R"({"balance":5,"open":true})", res->position, 1});
      std::lock_guard lock(mu);
      if (!res.ok())
        failed = true;
      else
        versions[a] = res->last_version;
      done.push_back(a);
      cv.notify_one();
    });
  };
  for (auto _ : state) {
    const std::uint64_t batch = durable ? 20000 : 100000;
    std::uint64_t issued = 0, completed = 0;
    std::vector<std::size_t> ready;
    for (std::size_t a = 0; a < k_aggregates; ++a) ready.push_back(a);
    while (completed < batch && !failed) {
      for (auto a : ready)
        if (issued < batch) {
          issue(a);
          ++issued;
        }
      ready.clear();
      std::unique_lock lock(mu);
      if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return !done.empty() || failed; }))
        failed = true;
      completed += done.size();
      ready.swap(done);
    }
    // Let the last appends of this round land before the next one.
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return completed + done.size() >= issued; });
    completed += done.size();
    done.clear();
    total += batch;
    if (failed) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  state.counters["avg_batch"] = s->embedded_log()->stats().avg_batch_size();
}
BENCHMARK(commit)->ArgName("fsync")->Arg(1)->Arg(0)->UseRealTime()->Iterations(3);

// --- end to end -------------------------------------------------------------------

// The bank workload as command bodies (one per line; setup phase first).
std::string workload_commands(const std::string& dir) {
  std::string workload;
  if (const char* w = std::getenv("ESFLOW_WORKLOAD"); w && fs::exists(w)) {
    workload = w;
  } else {
    const char* generator = std::getenv("ESFLOW_WORKLOAD_GENERATOR");
    if (generator == nullptr || !fs::exists(generator)) return {};
    workload = dir + "/workload.jsonl";
    const auto cmd = "node '" + std::string(generator) + "' --commands 20000 > " + workload + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return {};
  }
  std::ifstream in(workload);
  const auto out_path = dir + "/commands.ndjson";
  std::ofstream out(out_path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("command_id")) continue;  // the sample line
    nlohmann::json payload = j.value("data", nlohmann::json::object());
    payload["type"] = j["type"];
    nlohmann::json cmd = {{"tenant_id", j["tenant"]},
                          {"command_id", j["command_id"]},
                          {"aggregate_type", "Account"},
                          {"aggregate_id", j["account_id"]},
                          {"payload", payload}};
    out << cmd.dump() << "\n";
    ++n;
  }
  return n == 0 ? std::string() : out_path;
}

void pipeline(benchmark::State& state) {
  const bool durable = state.range(0) != 0;
  bench_dir dir;
  const auto commands = workload_commands(dir.str());
  if (commands.empty()) {
    state.SkipWithError("no workload: set ESFLOW_WORKLOAD or ESFLOW_WORKLOAD_GENERATOR (bench/README.md)");
    return;
  }
  std::size_t lines = 0;
  {
    std::ifstream in(commands);
    for (std::string l; std::getline(in, l);) ++lines;
  }
  graph::kind_registry registry;
  stages::register_builtin_stages(registry);
  std::uint64_t total = 0;
  std::map<std::string, std::pair<double, double>> latency;  // stage -> p50, p99 (us)
  int run = 0;
  for (auto _ : state) {
    std::ostringstream y;
    y << "pipeline: bench\nsettings: { data_dir: " << dir.str() << "/data-" << run++
      << ", durability: " << (durable ? "fsync" : "relaxed") << ", max_in_flight: 4096 }\n"
      << "aggregates:\n  Account: { program: " << account_program() << ", snapshot_every: 100 }\n"
      << "stages:\n"
      << "  source: { kind: source.file, path: " << commands << " }\n"
      << "  tenant: { kind: tenant.gate }\n"
      << "  decode: { kind: decode.command }\n"
      << "  rehydrate: { kind: aggregate.rehydrate, key: message, concurrency: 4 }\n"
      << "  decide: { kind: aggregate.decide, key: message, concurrency: 4 }\n"
      << "  commit: { kind: aggregate.commit, key: message }\n"
      << "  publish: { kind: aggregate.answer }\n"
      << "  done: { kind: sink.null }\n"
      << "flow:\n  - source -> tenant -> decode -> rehydrate -> decide -> commit -> publish -> done\n"
      << "  - \"*.error -> publish\"\n";
    auto spec = graph::load_pipeline_text(y.str(), "bench.yaml", dir.str(), registry);
    if (!spec.ok()) {
      state.SkipWithError(spec.err().message.c_str());
      return;
    }
    // The host function of run/dev/bench (one store and log per data directory).
    cli::serve_options so;
    so.registry = &registry;
    auto served = cli::serve_loaded({std::move(spec).value()}, so);
    if (!served.ok()) {
      state.SkipWithError(served.err().message.c_str());
      return;
    }
    auto& n = *cli::served_host(*served.value()).nodes().front();
    if (!n.wait_finished(std::chrono::steady_clock::now() + std::chrono::minutes(10))) {
      state.SkipWithError("pipeline did not finish");
      return;
    }
    for (const auto& rt : n.stages()) {
      const auto t = rt->stats().read();
      latency[rt->name()] = {t.latency.quantile_ns(0.5) / 1000.0, t.latency.quantile_ns(0.99) / 1000.0};
    }
    ignore(cli::stop_served(*served.value()));
    total += lines;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  for (const auto& name : {"tenant", "decode", "rehydrate", "decide", "commit", "publish"}) {
    state.counters[std::string(name) + "_p50_us"] = latency[name].first;
    state.counters[std::string(name) + "_p99_us"] = latency[name].second;
  }
  state.SetLabel(std::to_string(lines) + " commands (bank workload)");
}
BENCHMARK(pipeline)->ArgName("fsync")->Arg(1)->Arg(0)->UseRealTime()->Iterations(2)->Unit(
    benchmark::kMillisecond);

// --- ceilings ---------------------------------------------------------------------

void ceiling_simdjson_parse(benchmark::State& state) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string body{std::string_view(k_command)};
  for (auto _ : state) {
    auto doc = parser.iterate(body);
    std::string_view type;
    auto err = doc["aggregate_type"].get_string().get(type);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(type);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ceiling_simdjson_parse);

void ceiling_lua_call(benchmark::State& state) {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "function decide(s, c) return {{type='deposited', amount=c.amount}} end") != LUA_OK) {
    state.SkipWithError("lua");
    return;
  }
  for (auto _ : state) {
    lua_getglobal(L, "decide");
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, 6);
    lua_setfield(L, -2, "amount");
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      state.SkipWithError("pcall");
      break;
    }
    lua_pop(L, 1);
  }
  lua_close(L);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ceiling_lua_call);

void ceiling_write_batch(benchmark::State& state) {
  bench_dir dir;
  auto d =
      storage::db::open({.path = dir.str(),
                         .mode = state.range(0) ? storage::durability::fsync : storage::durability::relaxed});
  if (!d.ok()) {
    state.SkipWithError(d.err().to_string().c_str());
    return;
  }
  const std::string value(200, 'v');
  std::uint64_t n = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    wb.Put((*d)->handle(storage::cf::events), storage::keys::position(++n), value);
    if (!(*d)->write(wb).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(ceiling_write_batch)->ArgName("fsync")->Arg(1)->Arg(0)->UseRealTime()->MinTime(1.0);

}  // namespace
}  // namespace esflow::aggregate

BENCHMARK_MAIN();
