#include "graph/stage_runtime.h"

#include "common/log.h"
#include "graph/admission_gate.h"
#include "graph/cycle_clock.h"
#include "graph/json_field.h"
#include "graph/stage_descriptor.h"

#include <functional>

namespace esflow::graph {

namespace {
log_fields ids_of(const message& m) noexcept { return m.context ? m.context->log_ids() : log_fields{}; }
}  // namespace

stage_runtime::stage_runtime(tbb::flow::graph& g, const stage_spec& spec, const std::string& pipeline,
                             std::unique_ptr<stage> impl)
    : _spec(spec), _pipeline(pipeline), _impl(std::move(impl)), _ports(spec.ports.size()) {
  _max_in_flight = spec.max_in_flight;
  cycle_clock::ns_per_cycle();  // calibrate before messages flow
  _async = spec.descriptor->async;
  if (spec.descriptor->role == stage_role::source) return;  // sources run on their own thread
  _inline = spec.descriptor->runs_inline && spec.key.empty() &&
            spec.conc.kind == concurrency::mode::unlimited && _max_in_flight == 0;
  const bool keyed_lanes = !spec.key.empty() && !is_async();
  if (keyed_lanes) {
    // One serial lane per unit of concurrency: a key always maps to the same
    // lane, so its messages run one at a time in arrival order.
    for (std::size_t i = 0; i < std::max<std::size_t>(1, spec.conc.limit); ++i)
      _lanes.push_back(
          std::make_unique<tbb_node>(g, tbb::flow::serial, [this, i](message* m) { return body(m, i); }));
  } else {
    const std::size_t limit =
        spec.conc.kind == concurrency::mode::unlimited ? std::size_t(tbb::flow::unlimited) : spec.conc.limit;
    _lanes.push_back(std::make_unique<tbb_node>(g, limit, [this](message* m) { return body(m, 0); }));
  }
  // Keyed lanes and serial stages promise arrival order: gate them.
  if (!_async && (keyed_lanes || spec.conc.kind == concurrency::mode::serial)) {
    for (std::size_t i = 0; i < _lanes.size(); ++i) _gates.push_back(std::make_unique<lane_gate>());
  }
}

// The stage first: its own threads (async completions) stop while the lanes,
// ports and parking they call back into still exist.
stage_runtime::~stage_runtime() {
  _impl.reset();
  for (auto& g : _gates) {
    for (auto* m : g->waiting) delete m;  // a drain that timed out left them
    g->waiting.clear();
  }
}

std::size_t stage_runtime::lane_of(const std::string& key) const {
  return std::hash<std::string>{}(key) % _lanes.size();
}

void stage_runtime::deliver(message_ptr m) {
  _stats.on_deliver();
  if (!_spec.key.empty() && _spec.key != "message") m->key = json_field(m->body, _spec.key).value_or("");
  if (is_async()) {
    std::unique_lock lock(_park_mu);
    if (!_spec.key.empty()) {
      auto [it, idle] = _parked.try_emplace(m->key);
      if (!idle) {
        it->second.push_back(std::move(m));
        return;
      }
    } else if (_max_in_flight > 0) {
      if (_async_started >= _max_in_flight) {
        _parked[std::string()].push_back(std::move(m));
        return;
      }
      ++_async_started;
    }
  }
  dispatch(std::move(m));
}

void stage_runtime::dispatch(message_ptr m) {
  if (_inline) {
    body(m.release(), 0);  // no edge from an inline stage: nothing comes back to hand on
    return;
  }
  const std::size_t index = _lanes.size() == 1 ? 0 : lane_of(m->key);
  if (!_gates.empty()) {
    auto& gate = *_gates[index];
    std::lock_guard lock(gate.mu);
    if (gate.busy) {
      gate.waiting.push_back(m.release());
      return;
    }
    gate.busy = true;
  }
  _lanes[index]->try_put(m.release());  // queueing policy: never rejected; ownership passes to body()
}

// An ordered lane's message is done: the next one in arrival order enters.
void stage_runtime::release_lane(std::size_t lane) {
  message* next = nullptr;
  {
    auto& gate = *_gates[lane];
    std::lock_guard lock(gate.mu);
    if (gate.waiting.empty()) {
      gate.busy = false;
    } else {
      next = gate.waiting.front();
      gate.waiting.pop_front();
    }
  }
  if (next != nullptr) _lanes[lane]->try_put(next);
}

bool stage_runtime::accepts_by_edge() const {
  // An ordered stage takes its messages through its gate, never by edge.
  // An inline stage is called, not queued: an edge would make it a TBB task.
  return _lanes.size() == 1 && _spec.key.empty() && !(is_async() && _max_in_flight > 0) && _gates.empty() &&
         !_inline;
}

void stage_runtime::finalize() {
  if (_ports.empty() || _ports[0].size() != 1 || _lanes.empty() || is_async() || _inline) return;
  auto* target = _ports[0][0];
  if (!target->accepts_by_edge()) return;
  _edge_target = target;
  for (auto& lane : _lanes) tbb::flow::make_edge(*lane, *target->_lanes[0]);
}

message* stage_runtime::body(message* raw, std::size_t lane) {
  if (!raw) return nullptr;  // the predecessor sent its message elsewhere
  message_ptr m(raw);
  const auto start = static_cast<std::int64_t>(cycle_clock::now());
  _stats.on_start();
  const bool async = is_async();
  const std::string park_key = async && !_spec.key.empty() ? m->key : std::string();
  message_ptr forwarded;
  // Every line this stage logs for the message carries its ids (the JSON log
  // format; common/README.md). Copied: once handed on, the next stage owns them.
  const log_fields_copy ids(ids_of(*m));
  const log_scope scope(ids.fields(), log_scope::replace);
  message_rescue rescue{m.get(), std::uncaught_exceptions(), nullptr};
  auto* outer = std::exchange(t_message_rescue, &rescue);
  std::string thrown;
  try {
    _impl->process(std::move(m), emitter(this, start, park_key, _edge_target ? &forwarded : nullptr, lane));
  } catch (const std::exception& e) {
    thrown = e.what();
  } catch (...) {
    thrown = "a non-standard exception";
  }
  t_message_rescue = outer;
  if (!thrown.empty() || rescue.saved) on_thrown(std::move(rescue.saved), thrown, start, park_key);
  if (!async) _stats.on_finish(cycle_clock::to_ns(cycle_clock::now() - static_cast<std::uint64_t>(start)));
  if (!_gates.empty()) release_lane(lane);
  return forwarded.release();
}

// process() threw. Counted and logged; a message it still held is answered
// `internal` on the error port (an async stage's key is finished with it:
// the stage never got to hand the message on).
void stage_runtime::on_thrown(message_ptr rescued, const std::string& what, std::int64_t start,
                              const std::string& park_key) {
  const auto text = what.empty() ? std::string("an exception") : what;
  const log_scope scope(rescued ? ids_of(*rescued) : log_fields{},
                        log_scope::replace);  // an async stage's failure: off body()
  ESFLOW_ERROR("graph", "pipeline '{}' stage '{}' ({}): process threw: {}", _pipeline, _spec.name, _spec.kind,
               text);
  if (!rescued) {  // passed on before the throw: its new owner answers it
    _stats.on_error();
    return;
  }
  // fail() counts the error.
  fail(std::move(rescued), error::make(errc::internal, "stage '" + _spec.name + "' failed: " + text,
                                       "pipeline=" + _pipeline + " stage=" + _spec.name));
  if (is_async()) finish(start, park_key);
}

void emitter::fail_internal(message_ptr m, const std::string& what) const {
  _rt->on_thrown(std::move(m), what, _start_cycles, _park_key);
}

void stage_runtime::finish(std::int64_t start_cycles, const std::string& park_key) {
  _stats.on_finish(cycle_clock::to_ns(cycle_clock::now() - static_cast<std::uint64_t>(start_cycles)));
  message_ptr next;
  {
    std::lock_guard lock(_park_mu);
    if (!_spec.key.empty()) {
      auto it = _parked.find(park_key);
      if (it != _parked.end()) {
        if (it->second.empty()) {
          _parked.erase(it);
        } else {
          next = std::move(it->second.front());
          it->second.pop_front();
        }
      }
    } else if (_max_in_flight > 0) {
      auto it = _parked.find(std::string());
      if (it != _parked.end() && !it->second.empty()) {
        next = std::move(it->second.front());
        it->second.pop_front();
      } else {
        --_async_started;
      }
    }
  }
  if (next) dispatch(std::move(next));
}

void stage_runtime::redo(message_ptr m) {
  // The key stays parked (no finish); the retry counts as a new start.
  _stats.on_finish(0);
  _stats.on_deliver();
  dispatch(std::move(m));
}

void stage_runtime::emit(message_ptr m, std::size_t port, message_ptr* edge_slot) {
  _stats.on_out();
  if (port == 0 && edge_slot && !*edge_slot) {
    _edge_target->_stats.on_deliver();
    *edge_slot = std::move(m);
    return;
  }
  const auto& targets = _ports[port];
  if (targets.empty()) return;  // an unconnected port drops (validated: only optional ports)
  for (std::size_t i = 0; i + 1 < targets.size(); ++i) targets[i]->deliver(std::make_unique<message>(*m));
  targets.back()->deliver(std::move(m));
}

void stage_runtime::fail(message_ptr m, esflow::error e) {
  _stats.on_error();
  m->error = std::move(e);
  m->error_stage = _spec.name;
  const auto& targets = _ports[error_port()];
  if (targets.empty()) {
    report_unrouted_error(std::move(m));
    return;
  }
  for (std::size_t i = 0; i + 1 < targets.size(); ++i) targets[i]->deliver(std::make_unique<message>(*m));
  targets.back()->deliver(std::move(m));
}

void stage_runtime::report_unrouted_error(message_ptr m) {
  const log_scope scope(ids_of(*m), log_scope::replace);
  ESFLOW_WARN("graph", "pipeline '{}' stage '{}' ({}): {} [key={} seq={}]", _pipeline, _spec.name, _spec.kind,
              m->error->to_string(), m->key, m->seq);
  if (m->reply) m->reply->complete(*m);
}

// --- emitter / source_output / stage defaults ---------------------------------

void emitter::emit(message_ptr m, std::size_t port) const { _rt->emit(std::move(m), port, _edge_slot); }
void emitter::fail(message_ptr m, esflow::error e) const { _rt->fail(std::move(m), std::move(e)); }
void emitter::finish() const { _rt->finish(_start_cycles, _park_key); }
void emitter::redo(message_ptr m) const { _rt->redo(std::move(m)); }
const std::string& emitter::stage_name() const { return _rt->name(); }

void source_output::admit(message_ptr m) {
  m->gate = _gate;
  m->seq = _next_seq++;
  if (m->ingest_time == std::chrono::steady_clock::time_point{})
    m->ingest_time = std::chrono::steady_clock::now();
  _rt->emit(std::move(m), 0);
}

bool source_output::put(message_ptr m) {
  if (!_gate->acquire(_stop)) return false;
  admit(std::move(m));
  return true;
}

bool source_output::try_put(message_ptr& m) {
  if (_stop.stop_requested() || !_gate->try_acquire()) return false;
  admit(std::move(m));
  return true;
}

void stage::process(message_ptr, const emitter&) {}
void stage::run(source_output&) {}

}  // namespace esflow::graph
