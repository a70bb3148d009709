#pragma once
// Bounds the number of messages alive in one pipeline. A source takes a token
// per message it admits (blocking its own thread, never a TBB worker); the
// token returns when the message and every copy made from it are destroyed.
// Queues between stages therefore never hold more than `capacity` messages.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

namespace esflow::graph {

class admission_gate {
 public:
  explicit admission_gate(std::int64_t capacity)
      : _capacity(capacity), _resume_below(std::max<std::int64_t>(0, capacity / 2)) {}

  // Blocks until a token is free or `stop` is requested; false when stopped.
  bool acquire(const std::stop_token& stop);
  // Non-blocking: false when no token is free.
  bool try_acquire();
  // Fan-out copies take a token unconditionally: they are made on TBB workers
  // that must not block. This can exceed the capacity by the fan-out width.
  void force_acquire();
  void release();

  // A continuation's hold (gate_hold): not a message, so neither the bound
  // nor in_flight() counts it, but wait_empty() waits for it.
  void hold() { _holds.fetch_add(1, std::memory_order_seq_cst); }
  void unhold() { _holds.fetch_sub(1, std::memory_order_seq_cst); }

  // Blocks until nothing is in flight or held, or the deadline passes; true if empty.
  bool wait_empty(std::chrono::steady_clock::time_point deadline);
  // Wakes acquirers blocked in acquire() (used when a stop is requested).
  void notify_all() {
    _epoch.fetch_add(1, std::memory_order_acq_rel);
    _epoch.notify_all();
  }

  std::int64_t in_flight() const { return _in_flight.load(std::memory_order_relaxed); }
  std::int64_t peak() const { return _peak.load(std::memory_order_relaxed); }
  std::int64_t capacity() const { return _capacity; }

 private:
  void note_peak(std::int64_t now);

  const std::int64_t _capacity;
  // A blocked acquirer is woken once in-flight falls to this mark, not on
  // every release: one wake-up admits a batch instead of one message.
  const std::int64_t _resume_below;
  std::atomic<std::int64_t> _waiters{0};
  // Lock-free: release() runs once per message on TBB workers; waiters use
  // std::atomic::wait (a futex), woken only when a token returns.
  std::atomic<std::int64_t> _in_flight{0};
  std::atomic<std::int64_t> _peak{0};
  std::atomic<std::int64_t> _holds{0};
  // Bumped whenever a blocked acquirer may proceed (a token returned at
  // capacity, or a stop); acquirers futex-wait on it.
  std::atomic<std::uint32_t> _epoch{0};
};

// Holds the gate for a scope: an async continuation (a log's or reader's
// thread) keeps the gate from reading empty while it is still inside the
// stages it called into, even after its message finished downstream. A drain
// or teardown that waits for the gate therefore waits for the thread too.
class gate_hold {
 public:
  explicit gate_hold(admission_gate* gate) : _gate(gate) {
    if (_gate) _gate->hold();
  }
  ~gate_hold() {
    if (_gate) _gate->unhold();
  }
  gate_hold(const gate_hold&) = delete;
  gate_hold& operator=(const gate_hold&) = delete;

 private:
  admission_gate* _gate;
};

}  // namespace esflow::graph
