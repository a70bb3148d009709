#pragma once
// The JetStream event log (storage/jetstream/README.md): stream
// AGGREGATE_EVENTS, one message per committed command (a Commit, JSON) on
// tenant.<t>.aggregate.<type>.<id>; positions are stream sequences.
//
//   concurrency  Nats-Expected-Last-Subject-Sequence: the server refuses a
//                commit whose aggregate moved (10071 -> version_conflict).
//                Per aggregate the log keeps (version, last subject
//                sequence), loaded from the aggregate's last message (from
//                the stream leader: js_GetLastMsg) and cached (bounded).
//   idempotency  Nats-Msg-Id `<tenant>:<command id>` inside the stream's
//                duplicate window, and the local `dedupe` column family
//                beyond it (24 h default); the request hash travels in the
//                esflow-request-hash header so a JetStream-level duplicate is
//                told apart from a reused command id.
//   pipelining   js_PublishMsgAsync: many aggregates in flight at once, one
//                commit in flight per aggregate (later appends of the same
//                aggregate wait for the previous one).
//
// Threads: append() only queues. One submit thread ("esflow-js") owns the
// aggregate map: it checks command ids and versions, publishes, and turns
// acks into results (dedupe entries of all acks that arrived together are
// written in ONE WriteBatch before their completions run). nats.c's ack
// handler only hands the ack over, it never blocks.
//
// NOTE: every method is thread-safe; completions run on the submit thread,
//       in ack order; they must not block (they may call append()).
// NOTE: reads (read, read_from, current_version, find_command, last_position)
//       run on the caller's thread as direct gets against the stream: they
//       see every stored commit, also those of other nodes and those whose
//       answer was lost.
// NOTE: a commit is acknowledged when the server stored it; whether that is
//       fsync-durable or replicated depends on the server (durability_check.h).
// NOTE: the connection and the store must outlive the log; close() the log first.
#include "storage/event_log.h"
#include "storage/jetstream/ack_latency.h"
#include "storage/node_store.h"
#include "transport/nats/nats_connection.h"
#include "transport/nats/stream_policy.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace esflow::storage::jetstream {

struct jetstream_options {
  std::string stream = "AGGREGATE_EVENTS";
  // Create or validate the stream on open (stream_policy.h).
  bool ensure_stream = true;
  nats::streams_config streams;
  // An async publish without an ack after this long completes as unavailable
  // (may or may not be stored: the client resends with the same command id).
  std::chrono::milliseconds publish_timeout{5000};
  // JetStream API calls and direct gets.
  std::chrono::milliseconds request_timeout{2000};
  // Appends accepted but not completed; beyond it: unavailable ("queue full").
  std::size_t max_pending = 65536;
  // Aggregates whose (version, sequence) are cached; idle ones are dropped
  // beyond it and reloaded when needed.
  std::size_t version_cache_max = 1u << 20;
  // How long a command id is remembered in the dedupe CF (>= 24 h).
  std::chrono::milliseconds dedupe_ttl = std::chrono::hours(24);
  // Milliseconds since the Unix epoch; replaceable in tests.
  std::function<std::uint64_t()> now_ms;
};

struct jetstream_stats {
  std::uint64_t appends = 0;            // taken by the submit thread
  std::uint64_t publishes = 0;          // async publishes sent (commits and probes)
  std::uint64_t commits = 0;            // acked as new messages
  std::uint64_t local_duplicates = 0;   // answered from the dedupe CF, nothing sent
  std::uint64_t server_duplicates = 0;  // JetStream said duplicate (Nats-Msg-Id)
  std::uint64_t conflicts = 0;
  std::uint64_t unavailable = 0;     // breaker open, publish failed or timed out
  std::uint64_t version_loads = 0;   // last messages read from the stream leader
  std::uint64_t direct_gets = 0;     // every direct get (reads, loads, originals)
  std::uint64_t tail_consumers = 0;  // ordered consumers made to read a long tail
  std::uint64_t ack_batches = 0;     // dedupe WriteBatches
  std::uint64_t in_flight = 0;       // publishes awaiting their ack
  ack_latency_snapshot ack_latency;  // publish -> ack
};

class jetstream_event_log final : public event_log {
 public:
  static result<std::unique_ptr<jetstream_event_log>> open(nats::nats_connection& connection,
                                                           node_store& store, jetstream_options options = {});
  ~jetstream_event_log() override;

  void append(append_request request, append_callback done) override;
  result<std::vector<schemas::event>> read(std::string_view tenant, std::string_view type,
                                           std::string_view id, version_t after, std::size_t limit) override;
  // Starts at the hint's next sequence (direct get next_by_subject): a read
  // after a snapshot costs the commits after it, not the aggregate's history.
  result<aggregate_page> read_page(std::string_view tenant, std::string_view type, std::string_view id,
                                   version_t after, position_t after_position, std::size_t limit) override;
  // The dedupe column family only (a known id's original is fetched by append()).
  result<bool> knows_command(std::string_view tenant, std::string_view command_id) override;
  result<version_t> current_version(std::string_view tenant, std::string_view type,
                                    std::string_view id) override;
  result<std::optional<append_result>> find_command(std::string_view tenant,
                                                    std::string_view command_id) override;
  result<std::vector<positioned_commit>> read_from(position_t after, std::size_t max) override;
  result<position_t> last_position() override;
  // Completes every pending append (bounded by publish_timeout), then refuses
  // new ones. NOTE: must not be called from a completion.
  status close() override;

  jetstream_stats stats() const;
  const jetstream_options& options() const;

  struct impl;

 private:
  explicit jetstream_event_log(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace esflow::storage::jetstream
