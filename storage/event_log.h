#pragma once
// The event log: one interface, two backends (embedded RocksDB here, NATS
// JetStream later), one contract test suite (tests/storage/event_log_contract.h).
//
// Aggregates are keyed by (tenant, type, id): the same id under two tenants is
// two aggregates. A commit is the events of one command, stored all-or-none at
// contiguous versions, at one global position.
//
// NOTE: every method is thread-safe.
// NOTE: a commit is durable (per the backend's durability setting) before the
//       append completion runs; reads and read_from see it from then on.
// NOTE: positions grow with every commit and commits appear in read_from in
//       position order without holes in what has completed. Positions are not
//       necessarily contiguous (JetStream sequences are per stream).
#include "common/result.h"
#include "common/sha256.h"
#include "schemas/envelopes.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

using schemas::position_t;
using schemas::version_t;

struct append_request {
  std::string tenant_id;
  std::string aggregate_type;
  std::string aggregate_id;
  std::string command_id;  // idempotency key; must not be empty
  version_t expected_version = 0;
  // Identifies the command's content (see request_hash()): a resend of the
  // command id with another hash is command_id_reused.
  sha256_digest request_hash{};
  // The log stamps tenant, aggregate, command id and version on each event;
  // the other fields are stored as given.
  std::vector<schemas::event> events;
};

struct append_result {
  version_t first_version = 0;         // empty append: the unchanged current version
  version_t last_version = 0;          // the aggregate's version after the commit
  position_t position = 0;             // 0 for an empty append (nothing stored)
  bool duplicate = false;              // true: an earlier append with this command id is the answer
  std::vector<schemas::event> events;  // the stored events (the original ones for a duplicate)
};

// One page of an aggregate's events (event_log::read_page).
struct aggregate_page {
  std::vector<schemas::event> events;
  // Where the next page may start: a position at or before the commit that
  // holds the version after the page's last event; 0 when the backend gives
  // no hint (it indexes by version).
  position_t next_after_position = 0;
};

struct positioned_commit {
  position_t position = 0;
  schemas::commit commit;
};

// SHA-256 over the length-prefixed fields: the command's target aggregate and
// payload. Unkeyed, so every process and node (JetStream replicas compare the
// esflow-request-hash header) computes the same digest; cryptographic, so no
// one can build a second payload that passes as a duplicate of the first.
sha256_digest request_hash(std::string_view aggregate_type, std::string_view aggregate_id,
                           std::string_view payload_json);

class event_log {
 public:
  using append_callback = std::function<void(result<append_result>)>;

  virtual ~event_log() = default;

  // Appends the request's events if the aggregate is at expected_version.
  // Outcomes: ok (stored, or duplicate=true for a known command id with the same
  // hash: nothing appended, the original result returned); version_conflict
  // (message: "expected version E, actual A"); command_id_reused; invalid_command
  // (empty command id); unavailable (storage down, queue full, closed: the
  // command may or may not be stored; resend with the same command id).
  // An empty events list is checked like any append and stores nothing; it is
  // not remembered as a command id.
  // NOTE: done runs exactly once, possibly on another thread (the backend's
  //       commit thread) and possibly before append() returns; it must not
  //       block. It may call append() again.
  virtual void append(append_request request, append_callback done) = 0;

  // Events of one aggregate with version > after, in version order, at most
  // limit. An unknown aggregate (also one only another tenant has) gives an
  // empty list.
  virtual result<std::vector<schemas::event>> read(std::string_view tenant, std::string_view type,
                                                   std::string_view id, version_t after,
                                                   std::size_t limit) = 0;

  // read() that may start at `after_position`: a log position at or before
  // the commit holding version after+1 (a snapshot's position, or the
  // previous page's next_after_position); 0 = unknown, from the start. A
  // backend that indexes by version ignores it (this default). A hint that
  // turns out wrong (the commit after it holds a later version) costs a read
  // from the start, never a wrong answer.
  virtual result<aggregate_page> read_page(std::string_view tenant, std::string_view type,
                                           std::string_view id, version_t after, position_t after_position,
                                           std::size_t limit);

  // The aggregate's last version; 0 when it has no events.
  virtual result<version_t> current_version(std::string_view tenant, std::string_view type,
                                            std::string_view id) = 0;

  // The remembered result of a command id (duplicate=true), or nullopt when
  // unknown or expired.
  virtual result<std::optional<append_result>> find_command(std::string_view tenant,
                                                            std::string_view command_id) = 0;

  // Whether the command id is known, from this node's local state only (no
  // network round trip): the cheap check before deciding a command. A true
  // answer is confirmed by append() (which returns the original); a false one
  // may miss a command id this node never saw, which append() still detects.
  // Default: find_command() (local for a backend whose reads are local).
  virtual result<bool> knows_command(std::string_view tenant, std::string_view command_id);

  // Commits of every tenant with position > after, in position order, at most
  // max. Pull-style: runners and projections poll it with their checkpoint.
  virtual result<std::vector<positioned_commit>> read_from(position_t after, std::size_t max) = 0;

  // The position of the last completed commit (0 when the log is empty).
  virtual result<position_t> last_position() = 0;

  // Completes every pending append, then refuses new ones (unavailable).
  // Idempotent.
  virtual status close() = 0;
};

// Blocking convenience for tests and tools (never call it from a completion).
result<append_result> append_and_wait(event_log& log, append_request request);

}  // namespace esflow::storage
