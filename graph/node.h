#pragma once
// A running pipeline: the flow graph built from a pipeline_spec, and its
// lifecycle created -> running (ready) -> draining -> stopped.
//
// NOTE: start() spawns one thread per source. A pipeline whose sources all end
// (files, generators) finishes by itself once nothing is in flight; one fed
// by a server runs until drain(). drain() stops ingest, waits for in-flight
// messages up to the deadline, then calls every stage's drain() in flow order.
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/admission_gate.h"
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"
#include "graph/stage_runtime.h"

#include <oneapi/tbb/flow_graph.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow::graph {

enum class lifecycle { created, running, draining, stopped };
std::string_view to_string(lifecycle s) noexcept;

// Liveness of the graphs' workers: a no-op task enqueued into the arena every
// graph runs in must run within `within` (false: every worker is stuck, e.g.
// a stage blocking on I/O against the rules). Any thread; polls, never helps.
bool workers_alive(std::chrono::milliseconds within);

class node {
 public:
  // Instantiates every stage (factories may fail with context) and wires the graph.
  static result<std::unique_ptr<node>> build(pipeline_spec spec, service_registry& services);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  void start();
  // Waits until every source ended and nothing is in flight, or a drain began.
  // True when the pipeline finished by itself before the deadline.
  bool wait_finished(std::chrono::steady_clock::time_point deadline);
  // Stop ingest, finish in flight, flush, stop. Idempotent. Fails (unavailable)
  // when the deadline passed with messages still in flight.
  status drain(std::chrono::milliseconds timeout);
  status drain() { return drain(std::chrono::milliseconds(_spec.settings.integer("drain_timeout"))); }

  lifecycle state() const { return _state.load(); }
  const pipeline_spec& spec() const { return _spec; }
  const std::vector<std::unique_ptr<stage_runtime>>& stages() const { return _stages; }
  stage_runtime* find_stage(const std::string& name) const;
  const admission_gate& gate() const { return _gate; }

 private:
  explicit node(pipeline_spec spec);
  void on_source_done();
  void flush_stages();
  // Waits (bounded) until every source thread returned; names those that did not.
  bool wait_sources_stopped(std::chrono::steady_clock::time_point deadline);

  pipeline_spec _spec;
  // Outlives the graph and every message: on the heap, so that a teardown
  // that must leave messages in flight can leave it too (~node).
  std::unique_ptr<admission_gate> _gate_owner;
  admission_gate& _gate;
  std::unique_ptr<tbb::flow::graph> _graph;
  // The services of the pipeline's node kinds; stages are destroyed first (~node).
  std::vector<std::shared_ptr<void>> _kind_services;
  std::vector<std::unique_ptr<stage_runtime>> _stages;  // in spec order (flow order for drain)
  std::vector<std::jthread> _sources;
  std::atomic<lifecycle> _state{lifecycle::created};
  std::mutex _mu;
  std::condition_variable _cv;
  std::size_t _sources_running = 0;  // guarded by _mu
  bool _drain_requested = false;     // guarded by _mu
  bool _flushed = false;             // guarded by _mu
};

}  // namespace esflow::graph
