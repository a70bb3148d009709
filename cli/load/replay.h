#pragma once
// One phase of a load run: C client threads share one in-order cursor over
// the commands; each sends one, waits for its answer, takes the next. A
// duplicate (duplicate_of) is sent only after its original was answered, so
// it can only be answered as a duplicate. Stops at the end, at the deadline
// (checked before taking a command) or after max_commands. An `unavailable`
// answer (the node shedding load: HTTP 503 + Retry-After) is sent again after
// a backoff (1 ms doubling to 64 ms), at most `unavailable_retries` times, as
// a client of the contract does; its latency runs from the first send.
//
// NOTE: bounded: at most k_max_clients threads plus one progress thread;
//       every send is bounded by the transport's timeout, every wait for an
//       original by twice that.
#include "cli/load/outcome.h"
#include "cli/load/transport.h"
#include "cli/load/workload.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace esflow::load {

inline constexpr int k_max_clients = 1024;

using load_clock = std::chrono::steady_clock;

// Counts so far, for the progress line.
struct progress_counts {
  double elapsed_s = 0;
  std::size_t answered = 0, accepted = 0, duplicate = 0, rejected = 0, error = 0;
};
using progress_fn = std::function<void(const progress_counts&)>;

struct phase_limits {
  int clients = 1;
  load_clock::time_point deadline = load_clock::time_point::max();
  std::size_t max_commands = SIZE_MAX;
  std::chrono::milliseconds timeout{35000};  // the transport's request timeout
  int unavailable_retries = 100;
};

struct phase_result {
  std::string name;  // setup | run
  int clients = 0;
  double wall_s = 0;
  std::size_t sent = 0;
  std::size_t retried = 0;                // sends again after `unavailable`
  std::vector<answer> answers;            // answers[i]: of commands[i] (none: not sent)
  std::vector<std::uint64_t> latency_ns;  // of every sent command, sorted
  std::string stopped;                    // end | duration | max_commands
};

// `progress`, when set, is called about once a second from another thread.
phase_result replay(const std::string& name, transport& t, const std::vector<load_item>& commands,
                    const phase_limits& limits, const progress_fn& progress);

}  // namespace esflow::load
