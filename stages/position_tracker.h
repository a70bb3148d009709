#pragma once
// Which log positions a follower (projection, runner) has fully processed. The source admits
// commits in position order; keyed lanes finish them out of order; the
// watermark is the highest position P such that every commit up to P the
// source has read is stored. It is what /admin/views and a query's
// "position" report, what min_position waits for, and (computed as if the
// storing commit were done) the checkpoint written with its rows.
//
// A commit that failed in a transient way (nak) holds the watermark below
// it and asks the source to rewind there once nothing is in flight: rows
// skip events they already hold (row_value::version), so a replay is harmless.
//
// NOTE: thread-safe; the in-flight set is bounded by the pipeline's max_in_flight.
#include "schemas/envelopes.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>

namespace esflow::stages {

class position_tracker {
 public:
  using position_t = schemas::position_t;

  // Where the source starts (the checkpoint): everything up to it is done.
  void reset(position_t start);
  // The source admits a commit (before it enters the graph).
  void begin(position_t p);
  // The source has read the log up to p (commits no view follows included).
  void passed(position_t p);
  void done(position_t p);
  void failed(position_t p);
  // Asks the source to re-read the log after `to` once nothing is in flight
  // (a rebuild: to = 0). The watermark drops to `to` meanwhile.
  void request_rewind(position_t to);

  position_t watermark() const;
  // The watermark as it will be once p is done (the checkpoint p's store writes).
  position_t watermark_with(position_t p) const;
  // Waits until the watermark reaches p or the deadline passes.
  bool wait_for(position_t p, std::chrono::steady_clock::time_point deadline) const;
  // The position to re-read from when a failure asked for a rewind and
  // nothing is in flight any more (clears the request), else nullopt.
  std::optional<position_t> take_rewind();
  std::size_t in_flight() const;

 private:
  position_t watermark_locked() const;

  mutable std::mutex _mu;
  mutable std::condition_variable _cv;
  std::set<position_t> _in_flight;
  position_t _passed = 0;
  std::optional<position_t> _failed_min;
};

}  // namespace esflow::stages
