#pragma once
// The embedded event log: RocksDB column families `events` (global position ->
// commit), `event_index` (tenant, type, id, last version of a commit ->
// position) and `dedupe` (tenant, command id -> result reference, expiry).
//
// Appends go through one commit thread (group commit): it takes every append
// that arrived while the previous write ran, checks expected versions against
// an in-memory map of current versions (loaded lazily from event_index),
// writes all of them in ONE WriteBatch with one fsync, then runs the
// completions. See storage/README.md.
//
// NOTE: the commit thread is the only writer of the three families; nothing
//       else may write them while the log is open.
// NOTE: completions run on the commit thread, in the order the appends were
//       taken from the queue; a slow completion delays every later commit.
// NOTE: the db must outlive the log; close() the log before the db.
#include "storage/db.h"
#include "storage/event_log.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace esflow::storage {

struct embedded_options {
  // Appends waiting for the commit thread; beyond it append() completes at once
  // with unavailable ("commit queue full").
  std::size_t max_pending = 65536;
  // Appends written by one WriteBatch at most.
  std::size_t max_batch = 4096;
  // How long a command id is remembered (docs/contract.md 10.5 "Duplicates": >= 24 h).
  std::chrono::milliseconds dedupe_ttl = std::chrono::hours(24);
  // Aggregates whose version is kept in memory; the map is dropped and
  // reloaded lazily when it grows beyond this.
  std::size_t version_cache_max = 1u << 20;
  // Milliseconds since the Unix epoch; replaceable in tests.
  std::function<std::uint64_t()> now_ms;
};

struct commit_stats {
  std::uint64_t batches = 0;  // WriteBatches written
  std::uint64_t appends = 0;  // appends taken by the commit thread
  std::uint64_t commits = 0;  // appends that stored events
  std::uint64_t duplicates = 0;
  std::uint64_t conflicts = 0;
  std::uint64_t rejected_full = 0;  // refused because the queue was full
  std::uint64_t write_errors = 0;   // failed WriteBatches
  double avg_batch_size() const noexcept {
    return batches == 0 ? 0.0 : static_cast<double>(commits) / static_cast<double>(batches);
  }
};

class embedded_event_log final : public event_log {
 public:
  // Recovers the next position and starts the commit thread.
  static result<std::unique_ptr<embedded_event_log>> open(db& database, embedded_options options = {});
  ~embedded_event_log() override;

  void append(append_request request, append_callback done) override;
  result<std::vector<schemas::event>> read(std::string_view tenant, std::string_view type,
                                           std::string_view id, version_t after, std::size_t limit) override;
  result<version_t> current_version(std::string_view tenant, std::string_view type,
                                    std::string_view id) override;
  result<std::optional<append_result>> find_command(std::string_view tenant,
                                                    std::string_view command_id) override;
  result<std::vector<positioned_commit>> read_from(position_t after, std::size_t max) override;
  result<position_t> last_position() override;
  // NOTE: must not be called from a completion (it joins the commit thread).
  status close() override;

  commit_stats stats() const;

  struct impl;

 private:
  explicit embedded_event_log(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace esflow::storage
