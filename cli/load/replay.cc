#include "cli/load/replay.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace esflow::load {
namespace {

// State the client threads share.
struct shared_cursor {
  explicit shared_cursor(std::size_t n) : answered(std::make_unique<std::atomic<bool>[]>(n)) {}
  std::atomic<std::size_t> next{0};
  std::unique_ptr<std::atomic<bool>[]> answered;
  std::mutex mu;
  std::condition_variable cv;
  int waiting = 0;  // guarded by mu: threads waiting for an original's answer
  std::atomic<std::size_t> counts[5] = {};
  std::atomic<std::size_t> retried{0};

  void mark_answered(std::size_t i) {
    {
      std::lock_guard lock(mu);
      answered[i].store(true, std::memory_order_release);
      if (waiting == 0) return;
    }
    cv.notify_all();
  }
  bool wait_answered(std::size_t i, load_clock::time_point until) {
    std::unique_lock lock(mu);
    ++waiting;
    const bool ok = cv.wait_until(lock, until, [&] { return answered[i].load(std::memory_order_acquire); });
    --waiting;
    return ok;
  }
};

}  // namespace

phase_result replay(const std::string& name, transport& t, const std::vector<load_item>& commands,
                    const phase_limits& limits, const progress_fn& progress) {
  const int clients = std::clamp(limits.clients, 1, k_max_clients);
  const std::size_t end = std::min(commands.size(), limits.max_commands);
  phase_result res;
  res.name = name;
  res.clients = clients;
  res.answers.resize(commands.size());
  shared_cursor cur(commands.size());
  std::vector<std::vector<std::uint64_t>> lat(static_cast<std::size_t>(clients));
  const auto start = load_clock::now();

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto sender = t.sender(c);
      auto& mine = lat[static_cast<std::size_t>(c)];
      mine.reserve(end / static_cast<std::size_t>(clients) + 16);
      // Bounded: each pass takes a new index below `end`.
      for (;;) {
        if (load_clock::now() >= limits.deadline) return;
        const auto i = cur.next.fetch_add(1);
        if (i >= end) return;
        const auto& item = commands[i];
        answer a;
        const auto original = item.cmd.duplicate_of;
        if (original >= 0 && static_cast<std::size_t>(original) < commands.size() &&
            !cur.wait_answered(static_cast<std::size_t>(original),
                               load_clock::now() + 2 * limits.timeout + std::chrono::seconds(1))) {
          a = {outcome::error, "client_original_unanswered"};
        } else {
          const auto t0 = load_clock::now();
          a = sender->send(item);
          auto backoff = std::chrono::milliseconds(1);
          for (int r = 0; r < limits.unavailable_retries && a.kind == outcome::error &&
                          a.code == "unavailable" && load_clock::now() + backoff < limits.deadline;
               ++r) {
            std::this_thread::sleep_for(backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(64));
            cur.retried.fetch_add(1, std::memory_order_relaxed);
            a = sender->send(item);
          }
          mine.push_back(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(load_clock::now() - t0).count()));
        }
        cur.counts[static_cast<int>(a.kind)].fetch_add(1, std::memory_order_relaxed);
        res.answers[i] = std::move(a);
        cur.mark_answered(i);
      }
    });
  }

  // Progress about once a second until the clients are done.
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread ticker;
  if (progress) {
    ticker = std::thread([&] {
      std::unique_lock lock(done_mu);
      while (!done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return done; })) {
        progress_counts p;
        p.elapsed_s = std::chrono::duration<double>(load_clock::now() - start).count();
        p.accepted = cur.counts[static_cast<int>(outcome::accepted)].load();
        p.duplicate = cur.counts[static_cast<int>(outcome::duplicate)].load();
        p.rejected = cur.counts[static_cast<int>(outcome::rejected)].load();
        p.error = cur.counts[static_cast<int>(outcome::error)].load();
        p.answered = p.accepted + p.duplicate + p.rejected + p.error;
        progress(p);
      }
    });
  }
  for (auto& th : threads) th.join();
  res.wall_s = std::chrono::duration<double>(load_clock::now() - start).count();
  if (ticker.joinable()) {
    {
      std::lock_guard lock(done_mu);
      done = true;
    }
    done_cv.notify_all();
    ticker.join();
  }

  for (auto& l : lat) res.latency_ns.insert(res.latency_ns.end(), l.begin(), l.end());
  std::sort(res.latency_ns.begin(), res.latency_ns.end());
  for (const auto& a : res.answers)
    if (a.kind != outcome::none) ++res.sent;
  res.retried = cur.retried.load();
  // A client leaves only at the end of its range or at the deadline.
  const bool all_taken = cur.next.load() >= end;
  res.stopped = !all_taken ? "duration" : end < commands.size() ? "max_commands" : "end";
  return res;
}

}  // namespace esflow::load
