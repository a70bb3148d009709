#include "graph/admission_gate.h"

#include "graph/message.h"

#include <exception>
#include <thread>
#include <utility>

namespace esflow::graph {

void admission_gate::note_peak(std::int64_t now) {
  auto peak = _peak.load(std::memory_order_relaxed);
  while (now > peak && !_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

bool admission_gate::try_acquire() {
  auto cur = _in_flight.load(std::memory_order_seq_cst);
  while (cur < _capacity) {
    if (_in_flight.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) {
      note_peak(cur + 1);
      return true;
    }
  }
  return false;
}

bool admission_gate::acquire(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    // Read the epoch first: a release between the failed try and the wait
    // changes it, so the wait returns at once instead of missing the wake-up.
    auto epoch = _epoch.load(std::memory_order_seq_cst);
    _waiters.fetch_add(1, std::memory_order_seq_cst);
    // Registered as a waiter before this last try: a release that did not see
    // us left room that this try finds.
    if (try_acquire()) {
      _waiters.fetch_sub(1, std::memory_order_seq_cst);
      return true;
    }
    _epoch.wait(epoch, std::memory_order_seq_cst);
    _waiters.fetch_sub(1, std::memory_order_seq_cst);
  }
  return false;
}

void admission_gate::force_acquire() { note_peak(_in_flight.fetch_add(1, std::memory_order_acq_rel) + 1); }

void admission_gate::release() {
  // Wake blocked acquirers only at the low-water mark, and only if there are any.
  const auto now = _in_flight.fetch_sub(1, std::memory_order_seq_cst) - 1;
  if (now <= _resume_below && _waiters.load(std::memory_order_seq_cst) > 0) notify_all();
}

bool admission_gate::wait_empty(std::chrono::steady_clock::time_point deadline) {
  // Drain is rare and not latency-critical: a short poll keeps release() wait-free.
  // In-flight first: a continuation takes its hold while its message is
  // alive, so a zero read here followed by the holds read cannot miss it.
  while (_in_flight.load(std::memory_order_seq_cst) > 0 || _holds.load(std::memory_order_seq_cst) > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

message::message(const message& other)
    : key(other.key),
      body(other.body),
      seq(other.seq),
      ingest_time(other.ingest_time),
      error(other.error),
      error_stage(other.error_stage),
      context(other.context),
      reply(other.reply),
      gate(other.gate) {
  if (gate) gate->force_acquire();
}

thread_local message_rescue* t_message_rescue = nullptr;

message::~message() {
  if (auto* r = t_message_rescue;
      r != nullptr && r->target == this && std::uncaught_exceptions() > r->exceptions && !r->saved) {
    // Unwinding out of a stage body: the engine answers this one (message.h).
    auto m = std::make_unique<message>();
    m->key = std::move(key);
    m->body = std::move(body);
    m->seq = seq;
    m->ingest_time = ingest_time;
    m->context = std::move(context);
    m->reply = std::move(reply);
    m->gate = std::exchange(gate, nullptr);  // the token moves with it
    r->saved = std::move(m);
    return;
  }
  if (gate) gate->release();
}

}  // namespace esflow::graph
