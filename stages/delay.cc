// delay: holds each message for a fixed time, then passes it on — a stand-in
// for a stage that waits on the outside world (tests of backpressure, drain
// and benchmarks).
// Concurrency: async. process() only enqueues; one timer thread releases
// messages in due order and finishes them, so no TBB worker ever sleeps.
#include "stages/builtin.h"

#include <condition_variable>
#include <mutex>
#include <queue>
#include <thread>

namespace esflow::stages {
namespace {

class delay final : public graph::stage {
 public:
  explicit delay(std::chrono::microseconds hold)
      : _hold(hold), _timer([this](const std::stop_token& st) { loop(st); }) {}
  ~delay() override {
    _timer.request_stop();
    _cv.notify_all();
  }

  void process(graph::message_ptr m, const graph::emitter& out) override {
    {
      std::lock_guard lock(_mu);
      _due.push(item{std::chrono::steady_clock::now() + _hold, _next++, std::move(m), out});
    }
    _cv.notify_one();
  }

 private:
  struct item {
    std::chrono::steady_clock::time_point due;
    std::uint64_t order;
    mutable graph::message_ptr m;
    graph::emitter out;
    bool operator>(const item& o) const { return due != o.due ? due > o.due : order > o.order; }
  };

  void loop(const std::stop_token& st) {
    std::unique_lock lock(_mu);
    while (true) {
      // A stop comes only from the destructor, when the graph is being torn
      // down: what is left is dropped with the queue (returning its admission
      // tokens), never emitted into stages that may already be gone.
      if (st.stop_requested()) return;
      if (_due.empty()) {
        _cv.wait(lock, st, [&] { return !_due.empty(); });
        continue;
      }
      const auto due = _due.top().due;
      if (std::chrono::steady_clock::now() < due) {
        _cv.wait_until(lock, st, due, [&] { return !_due.empty() && _due.top().due < due; });
        continue;
      }
      auto m = std::move(_due.top().m);
      auto out = _due.top().out;
      _due.pop();
      lock.unlock();
      const graph::gate_hold hold(m->gate);  // until emit and finish are done with the stages
      out.emit(std::move(m));
      out.finish();
      lock.lock();
    }
  }

  std::chrono::microseconds _hold;
  std::mutex _mu;
  std::condition_variable_any _cv;
  std::priority_queue<item, std::vector<item>, std::greater<>> _due;
  std::uint64_t _next = 0;
  std::jthread _timer;  // last: joins before the queue is destroyed
};

}  // namespace

graph::stage_descriptor delay_descriptor() {
  graph::stage_descriptor d;
  d.kind = "delay";
  d.description = "holds each message for a fixed time on a timer thread (async), then passes it on";
  d.async = true;
  d.params = {
      graph::int_param("micros", 1000, "how long to hold each message, in microseconds", 0, 60000000)};
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    return std::unique_ptr<graph::stage>(
        new delay(std::chrono::microseconds(init.spec.params.integer("micros"))));
  };
  return d;
}

}  // namespace esflow::stages
