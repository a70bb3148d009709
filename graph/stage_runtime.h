#pragma once
// The engine's wrapper around one stage instance: its TBB nodes (one, or one
// serial lane per unit of concurrency when keyed), its successors per port,
// its figures, and the parking of keyed async work.
//
// Concurrency contract: deliver() may be called from any thread (workers,
// source threads, async completion threads). Parking state is guarded by a
// mutex taken only by keyed async stages; everything else is lock-free.
#include "graph/pipeline_spec.h"
#include "graph/stage.h"
#include "graph/stage_stats.h"

#include <oneapi/tbb/flow_graph.h>

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace esflow::graph {

class stage_runtime {
 public:
  // A body returns the message it hands on through a TBB edge (or nullptr):
  // TBB then runs the successor on the same worker without spawning a task.
  using tbb_node = tbb::flow::function_node<message*, message*, tbb::flow::queueing>;

  stage_runtime(tbb::flow::graph& g, const stage_spec& spec, const std::string& pipeline,
                std::unique_ptr<stage> impl);
  ~stage_runtime();
  stage_runtime(const stage_runtime&) = delete;
  stage_runtime& operator=(const stage_runtime&) = delete;

  void connect(std::size_t port, stage_runtime* target) { _ports[port].push_back(target); }
  // After every connect(): joins this stage's `out` to its single successor by
  // a TBB edge where that successor needs no routing (one lane, no parking).
  void finalize();
  // Hands a message to this stage (queues it behind the stage's concurrency).
  void deliver(message_ptr m);

  // From emitter.
  void emit(message_ptr m, std::size_t port, message_ptr* edge_slot = nullptr);
  void fail(message_ptr m, esflow::error e);
  void finish(std::int64_t start_cycles, const std::string& park_key);
  // A stage body or an async continuation threw (see body()).
  void on_thrown(message_ptr rescued, const std::string& what, std::int64_t start,
                 const std::string& park_key);
  void redo(message_ptr m);

  const stage_spec& spec() const { return _spec; }
  const std::string& name() const { return _spec.name; }
  const std::string& pipeline() const { return _pipeline; }
  stage& impl() { return *_impl; }
  stage_stats& stats() { return _stats; }
  std::size_t error_port() const { return _ports.size() - 1; }
  bool is_async() const { return _async; }

 private:
  message* body(message* raw, std::size_t lane);
  bool accepts_by_edge() const;
  void dispatch(message_ptr m);
  std::string key_of(const message& m) const;
  std::size_t lane_of(const std::string& key) const;
  void report_unrouted_error(message_ptr m);
  void release_lane(std::size_t lane);

  const stage_spec& _spec;
  std::string _pipeline;
  std::unique_ptr<stage> _impl;
  stage_stats _stats;
  std::vector<std::vector<stage_runtime*>> _ports;  // by port index; last = error
  std::vector<std::unique_ptr<tbb_node>> _lanes;    // 1 unless keyed sync stage
  bool _async = false;
  bool _inline = false;                   // stage_descriptor::runs_inline, where the spec allows it
  stage_runtime* _edge_target = nullptr;  // set by finalize(): `out` travels by TBB edge

  // Ordered lanes (keyed lanes, serial stages): at most one message is inside
  // a lane's TBB node at a time, the rest wait here in arrival order. A TBB
  // serial function_node queues its input but does not promise FIFO when
  // messages arrive from several threads under contention (oneTBB issue 289):
  // order is kept by this gate, not by TBB.
  struct lane_gate {
    std::mutex mu;
    bool busy = false;
    std::deque<message*> waiting;
  };
  std::vector<std::unique_ptr<lane_gate>> _gates;  // one per lane when ordered, else empty

  // Keyed async stages: one message per key in process() -> finish(); later
  // ones wait here in arrival order. Unkeyed async stages with max_in_flight
  // park here under the empty key when the bound is reached.
  std::mutex _park_mu;
  std::unordered_map<std::string, std::deque<message_ptr>> _parked;
  std::int64_t _async_started = 0;  // guarded by _park_mu
  std::int64_t _max_in_flight = 0;  // 0 = unbounded (the pipeline's gate still bounds it)
};

}  // namespace esflow::graph
