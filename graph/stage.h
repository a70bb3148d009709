#pragma once
// The interface every stage kind implements, and the handles the engine gives it.
//
// Concurrency contract (every stage header restates its own):
// - process() runs on TBB workers, up to the stage's concurrency at once; a
//   keyed stage never runs two messages of the same key at once, and sees
//   them in arrival order.
// - process() must not block on I/O: a stage that waits on the outside world
//   is `async` (descriptor), returns at once, and finishes the message later
//   from its own thread through a copy of the emitter.
// - run() (sources only) runs on a dedicated thread, not a TBB worker; it may
//   block, and returns when its input ends or a stop is requested.
// - drain() runs once, single-threaded, after nothing is in flight.
#include "common/error.h"
#include "graph/admission_gate.h"
#include "graph/message.h"

#include <atomic>
#include <exception>
#include <memory>
#include <stop_token>
#include <string>

namespace esflow::graph {

class stage_runtime;
class admission_gate;

// Sends a stage's results on. Cheap to copy; an async stage keeps a copy
// until it finishes the message.
class emitter {
 public:
  emitter(stage_runtime* rt, std::int64_t start_cycles, std::string park_key,
          message_ptr* edge_slot = nullptr, std::size_t lane = 0)
      : _rt(rt),
        _start_cycles(start_cycles),
        _park_key(std::move(park_key)),
        _edge_slot(edge_slot),
        _lane(lane) {}

  // Emits on an output port (0 = the first declared port, usually "out").
  void emit(message_ptr m, std::size_t port = 0) const;
  // Emits on the stage's `error` port with the error attached.
  void fail(message_ptr m, esflow::error e) const;
  // Async stages only: the message begun in process() is done (call exactly
  // once, after its emit/fail). Sync stages never call it.
  void finish() const;
  // Async stages only, instead of finish(): runs process() again for this
  // message on a TBB worker, keeping its key's turn (bounded retries, e.g. a
  // commit that met a version conflict). The new call gets its own emitter.
  void redo(message_ptr m) const;
  // An async continuation caught an exception: counted and logged; `m`
  // (when it still holds the message) is answered `internal` on the error
  // port and the message finished. See run_guarded().
  void fail_internal(message_ptr m, const std::string& what) const;
  // Keyed sync stages: which of the stage's lanes (0..concurrency-1) runs this
  // call. Lanes are serial, so per-lane state needs no lock.
  std::size_t lane() const { return _lane; }

  const std::string& stage_name() const;

 private:
  stage_runtime* _rt;
  std::int64_t _start_cycles;
  std::string _park_key;
  message_ptr* _edge_slot;  // sync stages: where process() leaves the message for the TBB edge
  std::size_t _lane;
};

// Runs an async stage's continuation — an append completion on a log's
// thread, a job on a reader thread — so that no exception escapes into the
// thread that runs it (it may not be ours to crash): f(m) takes the message
// by reference and moves it on when it emits; if it throws while still
// holding it, the message is answered `internal` and finished. The gate is
// held while f runs (gate_hold, not a message), so a drain or teardown waits for it.
template <class F>
void run_guarded(const emitter& out, message_ptr m, F&& f) noexcept {
  const gate_hold hold(m ? m->gate : nullptr);  // until the stages called below are left
  try {
    f(m);
    return;
  } catch (const std::exception& e) {
    out.fail_internal(std::move(m), e.what());
  } catch (...) {
    out.fail_internal(std::move(m), "a non-standard exception");
  }
}

// The door through which a source admits messages.
class source_output {
 public:
  source_output(stage_runtime* rt, admission_gate* gate, std::stop_token stop)
      : _rt(rt), _gate(gate), _stop(std::move(stop)) {}

  // Blocks until the pipeline has room; false (message dropped) when stopping.
  bool put(message_ptr m);
  // Never blocks: false when the pipeline is full or stopping (e.g. HTTP answers 503).
  bool try_put(message_ptr& m);
  const std::stop_token& stop_token() const { return _stop; }
  bool stopping() const { return _stop.stop_requested(); }

 private:
  void admit(message_ptr m);

  stage_runtime* _rt;
  admission_gate* _gate;
  std::stop_token _stop;
  std::atomic<std::uint64_t> _next_seq{0};  // HTTP sources admit from many threads
};

class stage {
 public:
  virtual ~stage() = default;
  stage() = default;
  stage(const stage&) = delete;
  stage& operator=(const stage&) = delete;

  // Transforms and sinks.
  virtual void process(message_ptr m, const emitter& out);
  // Sources: produce until the input ends or out.stopping().
  virtual void run(source_output& out);
  // Flush buffered output; called once after in-flight reached zero.
  virtual void drain() {}
};

}  // namespace esflow::graph
