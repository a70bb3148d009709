#pragma once
// blocking_pool: a few named threads that run jobs allowed to block (network
// reads), so that TBB workers never do (docs/design-notes.md, "No worker
// blocks on I/O").
//
// Bounded twice: a fixed number of threads and a fixed queue. try_submit()
// never blocks; a full queue is the caller's `unavailable` answer.
//
// Threads: `threads` of them, named `<name>`; each job runs inside a
// catch-all (a job that throws is logged, the thread goes on).
// NOTE: stop() runs every job already queued, then joins; jobs submitted
//       after it are refused. The destructor calls stop().
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace esflow {

class blocking_pool {
 public:
  using job = std::function<void()>;

  blocking_pool(std::string name, std::size_t threads, std::size_t max_queued);
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  // false: the queue is full or the pool is stopping (the job is not run).
  bool try_submit(job j);
  void stop();

  std::size_t queued() const;
  std::size_t max_queued() const noexcept { return _max_queued; }

 private:
  void run();

  std::string _name;
  std::size_t _max_queued;
  mutable std::mutex _mu;
  std::condition_variable _cv;
  std::deque<job> _jobs;   // guarded by _mu
  bool _stopping = false;  // guarded by _mu
  std::vector<std::thread> _threads;
};

}  // namespace esflow
