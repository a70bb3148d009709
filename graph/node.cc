#include "graph/node.h"

#include "common/log.h"
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <pthread.h>
#include <thread>

namespace esflow::graph {

std::string_view to_string(lifecycle s) noexcept {
  switch (s) {
    case lifecycle::created:
      return "created";
    case lifecycle::running:
      return "running";
    case lifecycle::draining:
      return "draining";
    case lifecycle::stopped:
      return "stopped";
  }
  return "?";
}

namespace {

// How long a node being destroyed waits for its sources to return, and then
// for the messages a timed-out drain left in flight (an event log answers
// every append within its publish timeout, 5 s by default).
constexpr std::chrono::seconds k_source_stop_grace{5};
constexpr std::chrono::seconds k_teardown_grace{15};
constexpr std::chrono::milliseconds k_source_stop_floor{200};

// Messages enter graphs from source and HTTP threads that never execute TBB
// tasks themselves. oneTBB's defaults keep a slot (and a core) for such a
// "master" thread, which would leave one of two cores without a worker; the
// graphs therefore live in an arena with every slot open to workers.
// One core is left to the threads that are not workers (the group commit,
// transports, sources): idle workers spin for work (sched_yield) on the cores
// those need, which cost more than the worker did (docs/performance.md);
// ESFLOW_GRAPH_THREADS (1..256) sizes it otherwise.
unsigned graph_threads() {
  const unsigned cores = std::max(2U, std::thread::hardware_concurrency()) - 1;
  const char* v = std::getenv("ESFLOW_GRAPH_THREADS");
  if (v == nullptr || *v == '\0') return cores;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 256) {
    ESFLOW_WARN("graph", "ESFLOW_GRAPH_THREADS='{}' is not 1..256: using {} (cores - 1)", v, cores);
    return cores;
  }
  return static_cast<unsigned>(n);
}

// Names the arena's workers `esflow-graph` for top, perf and debuggers: a
// worker otherwise keeps the name of the thread that started TBB (an HTTP
// worker's, say), which hid the graph's share in per-thread figures.
class worker_namer final : public tbb::task_scheduler_observer {
 public:
  explicit worker_namer(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) { observe(true); }

  void on_scheduler_entry(bool is_worker) override {
    if (is_worker) pthread_setname_np(pthread_self(), "esflow-graph");
  }
};

tbb::task_arena& graph_arena() {
  static const unsigned threads = graph_threads();
  static tbb::global_control workers(tbb::global_control::max_allowed_parallelism, threads + 1);
  static tbb::task_arena arena(static_cast<int>(threads), 0);
  // Never destroyed: observe(false) at exit can leave TBB's record of the observer to a worker
  // that is still inside a notification, which then never frees it (LeakSanitizer saw that).
  [[maybe_unused]] static const auto* const namer = new worker_namer(arena);
  return arena;
}

}  // namespace

bool workers_alive(std::chrono::milliseconds within) {
  // The probe outlives a late task: shared, not on this stack.
  auto done = std::make_shared<std::atomic<bool>>(false);
  graph_arena().enqueue([done] { done->store(true); });
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (!done->load()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

node::node(pipeline_spec spec)
    : _spec(std::move(spec)),
      _gate_owner(std::make_unique<admission_gate>(_spec.settings.integer("max_in_flight"))),
      _gate(*_gate_owner) {
  // A graph runs its tasks in the arena it was constructed in.
  graph_arena().execute([this] { _graph = std::make_unique<tbb::flow::graph>(); });
}

node::~node() {
  if (_state.load() == lifecycle::running) ignore(drain(std::chrono::milliseconds(1000)));
  for (auto& t : _sources) t.request_stop();
  _gate.notify_all();
  // A source that ignores its stop token is a bug worth naming; the join
  // below still waits for it (its thread uses this node).
  static_cast<void>(wait_sources_stopped(std::chrono::steady_clock::now() + k_source_stop_grace));
  _sources.clear();  // joins
  // After a drain that timed out, completions of async stages (an event
  // log's commit thread, the aggregate readers) still call into the stages,
  // the gate and the kind services: nothing is destroyed before the last
  // message is done. Bounded: past the grace the pieces are left allocated
  // (a leak at exit beats a use-after-free).
  if (!_gate.wait_empty(std::chrono::steady_clock::now() + k_teardown_grace)) {
    ESFLOW_ERROR(
        "graph",
        "pipeline '{}': {} messages still in flight {} s after the drain; leaving its stages allocated",
        _spec.name, _gate.in_flight(), k_teardown_grace.count());
    for (auto& st : _stages) static_cast<void>(st.release());
    static_cast<void>(_graph.release());
    static_cast<void>(_gate_owner.release());
    static_cast<void>(new std::vector<std::shared_ptr<void>>(std::move(_kind_services)));
    return;
  }
  _graph->wait_for_all();
  // Upstream first, letting the graph settle after each: a stage with threads
  // of its own (an async stage after a drain that timed out) may hand messages
  // downstream until it is destroyed. The flow has no cycles.
  std::vector<std::size_t> inputs(_spec.stages.size(), 0);
  for (const auto& e : _spec.edges) ++inputs[_spec.index_of(e.to)];
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i] == 0) ready.push_back(i);
  while (!ready.empty()) {
    const auto i = ready.back();
    ready.pop_back();
    if (i < _stages.size()) _stages[i].reset();  // fewer when build() failed midway
    _graph->wait_for_all();
    for (const auto& e : _spec.edges)
      if (_spec.index_of(e.from) == i && --inputs[_spec.index_of(e.to)] == 0)
        ready.push_back(_spec.index_of(e.to));
  }
  _stages.clear();  // before the graph their nodes belong to
}

result<std::unique_ptr<node>> node::build(pipeline_spec spec, service_registry& services) {
  std::unique_ptr<node> n(new node(std::move(spec)));
  // Kind services first: every stage of a kind shares its kind's.
  std::map<std::string, std::shared_ptr<void>> kind_services;
  for (const auto* kind : n->_spec.node_kinds) {
    if (!kind->make_service) continue;
    auto made = kind->make_service(node_kind_init{n->_spec, services});
    if (!made.ok()) {
      auto e = std::move(made).err();
      e.message = n->_spec.file + ": " + kind->name + " node: " + e.message;
      return e;
    }
    kind_services[kind->name] = made.value();
    n->_kind_services.push_back(std::move(made).value());
  }
  auto make_context = n->_spec.make_context;
  if (!make_context) make_context = [] { return std::shared_ptr<message_context>(); };
  for (const auto& s : n->_spec.stages) {
    std::shared_ptr<void> kind_service;
    if (auto it = kind_services.find(s.descriptor->node_kind); it != kind_services.end())
      kind_service = it->second;
    auto made = s.descriptor->make(stage_init{s, n->_spec, services, kind_service, make_context});
    if (!made.ok()) {
      auto e = std::move(made).err();
      e.message = s.at.to_string() + ": stage '" + s.name + "' (" + s.kind + "): " + e.message;
      return e;
    }
    n->_stages.push_back(
        std::make_unique<stage_runtime>(*n->_graph, s, n->_spec.name, std::move(made).value()));
  }
  for (const auto& e : n->_spec.edges) {
    auto* from = n->find_stage(e.from);
    auto* to = n->find_stage(e.to);
    const auto& ports = from->spec().ports;
    const auto port = static_cast<std::size_t>(std::find(ports.begin(), ports.end(), e.port) - ports.begin());
    from->connect(port, to);
  }
  for (auto& s : n->_stages) s->finalize();
  return n;
}

stage_runtime* node::find_stage(const std::string& name) const {
  for (const auto& s : _stages)
    if (s->name() == name) return s.get();
  return nullptr;
}

void node::start() {
  auto expected = lifecycle::created;
  if (!_state.compare_exchange_strong(expected, lifecycle::running)) return;
  std::vector<stage_runtime*> sources;
  for (auto& s : _stages)
    if (s->spec().descriptor->role == stage_role::source) sources.push_back(s.get());
  {
    std::lock_guard lock(_mu);
    _sources_running = sources.size();
  }
  for (auto* rt : sources) {
    _sources.emplace_back([this, rt](const std::stop_token& stop) {
      source_output out(rt, &_gate, stop);
      // Named by kind (saga.follow, outbox.scan, ...) for top and per-thread profiles.
      pthread_setname_np(pthread_self(), rt->spec().kind.substr(0, 15).c_str());
      try {
        rt->impl().run(out);
      } catch (const std::exception& e) {
        ESFLOW_ERROR("graph", "pipeline '{}' source '{}' ({}) stopped: {}", _spec.name, rt->name(),
                     rt->spec().kind, e.what());
      } catch (...) {
        ESFLOW_ERROR("graph", "pipeline '{}' source '{}' ({}) stopped: a non-standard exception", _spec.name,
                     rt->name(), rt->spec().kind);
      }
      on_source_done();
    });
  }
  ESFLOW_INFO("graph", "pipeline '{}' running: {} stages, {} sources, max_in_flight {}", _spec.name,
              _stages.size(), sources.size(), _gate.capacity());
}

bool node::wait_sources_stopped(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(_mu);
  if (_cv.wait_until(lock, deadline, [&] { return _sources_running == 0; })) return true;
  ESFLOW_ERROR("graph",
               "pipeline '{}': {} source(s) did not stop within the deadline (a source must return "
               "when its stop token is set)",
               _spec.name, _sources_running);
  return false;
}

void node::on_source_done() {
  std::lock_guard lock(_mu);
  --_sources_running;
  _cv.notify_all();
}

bool node::wait_finished(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock lock(_mu);
    if (!_cv.wait_until(lock, deadline, [&] { return _sources_running == 0 || _drain_requested; }))
      return false;
    if (_drain_requested) return false;
  }
  if (!_gate.wait_empty(deadline)) return false;
  _graph->wait_for_all();
  flush_stages();
  _state.store(lifecycle::stopped);
  return true;
}

void node::flush_stages() {
  {
    std::lock_guard lock(_mu);
    if (_flushed) return;
    _flushed = true;
  }
  for (auto& s : _stages) s->impl().drain();
}

status node::drain(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::lock_guard lock(_mu);
    if (_drain_requested) return {};
    _drain_requested = true;
    _cv.notify_all();
  }
  if (_state.load() == lifecycle::stopped) return {};
  _state.store(lifecycle::draining);
  for (auto& t : _sources) t.request_stop();
  _gate.notify_all();
  // Sources stop promptly once told (a floor keeps a tiny drain deadline from
  // blaming them); the deadline is for the messages in flight.
  const bool sources_stopped =
      wait_sources_stopped(std::max(deadline, std::chrono::steady_clock::now() + k_source_stop_floor));
  if (sources_stopped) {
    for (auto& t : _sources)
      if (t.joinable()) t.join();
  }
  const bool empty = _gate.wait_empty(deadline);
  const auto left = _gate.in_flight();
  if (empty) _graph->wait_for_all();
  flush_stages();
  _state.store(lifecycle::stopped);
  if (!empty || !sources_stopped) {
    return error::make(errc::unavailable,
                       "drain deadline passed with " + std::to_string(left) + " messages in flight" +
                           (sources_stopped ? "" : " and a source still running"),
                       "pipeline=" + _spec.name);
  }
  ESFLOW_INFO("graph", "pipeline '{}' drained", _spec.name);
  return {};
}

}  // namespace esflow::graph
