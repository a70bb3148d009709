// Engine overhead: 8 no-op stages built from a pipeline file vs the same chain
// written by hand as a bare tbb::flow::graph, in one run (bench/RESULTS.md).
#include "cli/app.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"

#include <benchmark/benchmark.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

#include <cstdlib>
#include <thread>

namespace {

constexpr std::int64_t k_messages = 200000;

// The bare graph: the same message type (heap-allocated, freed at the sink),
// function_nodes joined by make_edge, fed by one thread, like a source.
void bare_chain8(benchmark::State& state, std::size_t concurrency) {
  using esflow::graph::message;
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  tbb::global_control workers(tbb::global_control::max_allowed_parallelism, cores + 1);
  tbb::task_arena arena(static_cast<int>(cores), 0);
  for (auto _ : state) {
    std::unique_ptr<tbb::flow::graph> g;
    arena.execute([&] { g = std::make_unique<tbb::flow::graph>(); });
    using node_t = tbb::flow::function_node<message*, message*, tbb::flow::queueing>;
    std::vector<std::unique_ptr<node_t>> chain;
    for (int i = 0; i < 8; ++i)
      chain.push_back(std::make_unique<node_t>(*g, concurrency, [](message* m) { return m; }));
    tbb::flow::function_node<message*> sink(*g, tbb::flow::unlimited, [](message* m) { delete m; });
    for (int i = 0; i + 1 < 8; ++i) tbb::flow::make_edge(*chain[i], *chain[i + 1]);
    tbb::flow::make_edge(*chain.back(), sink);
    for (std::int64_t i = 0; i < k_messages; ++i) {
      auto* m = new message();
      m->body = "{}";
      chain.front()->try_put(m);
    }
    g->wait_for_all();
  }
  state.SetItemsProcessed(state.iterations() * k_messages);
}

void engine_chain8(benchmark::State& state, const char* file) {
  setenv("BENCH_MESSAGES", std::to_string(k_messages).c_str(), 1);
  const std::string path = std::string(ESFLOW_SOURCE_DIR) + "/bench/pipelines/" + file;
  for (auto _ : state) {
    auto spec = esflow::graph::load_pipeline_file(path, esflow::cli::builtin_registry());
    if (!spec.ok()) {
      state.SkipWithError(spec.err().message.c_str());
      return;
    }
    esflow::service_registry services;
    auto n = esflow::graph::node::build(std::move(spec).value(), services);
    if (!n.ok()) {
      state.SkipWithError(n.err().message.c_str());
      return;
    }
    n.value()->start();
    if (!n.value()->wait_finished(std::chrono::steady_clock::now() + std::chrono::minutes(5))) {
      state.SkipWithError("did not finish");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * k_messages);
}

void BM_bare_chain8_serial(benchmark::State& s) { bare_chain8(s, tbb::flow::serial); }
void BM_bare_chain8_unlimited(benchmark::State& s) { bare_chain8(s, tbb::flow::unlimited); }
void BM_engine_chain8_serial(benchmark::State& s) { engine_chain8(s, "chain8_serial.yaml"); }
void BM_engine_chain8_unlimited(benchmark::State& s) { engine_chain8(s, "chain8_unlimited.yaml"); }

BENCHMARK(BM_bare_chain8_serial)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_engine_chain8_serial)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_bare_chain8_unlimited)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_engine_chain8_unlimited)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

}  // namespace

BENCHMARK_MAIN();
