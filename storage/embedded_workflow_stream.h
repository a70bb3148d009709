#pragma once
// The embedded workflow stream (storage/workflow_stream.h): one stream
// (WORKFLOW_COMMANDS or WORKFLOW_EVENTS) in the node store's `streams`
// column family — esflow's own single-machine stand-in for the JetStream
// stream, not a JetStream feature.
//
//   message  (stream, "m", position u64 BE) -> format, subject, msg id, headers, body
//   msg id   (stream, "i", position u64 BE) -> expiry ms (u64 BE), msg id
//
// Publishes go through one writer thread per stream object ("esflow-stream",
// group commit like embedded_event_log): it takes every publish queued while
// the previous write ran, answers known msg ids (this batch, else the ids
// still in their window) with the first position and duplicate=true, writes
// the new messages, their msg-id entries and the publishes' `with` writes
// (publish_request::with: same store) in ONE write set with the store's
// durability, then runs the completions in order.
//
// Msg ids are remembered for dedupe_window (default 2 min, as JetStream's
// duplicate window) in memory (recent_msg_ids.h), at most max_msg_ids of
// them; the "i" entries are their durable copy, read back at open. Entries
// (stream, "d", msg id) of older versions are read at open too, never
// written. The `streams` family's compaction filter (db.cc) drops expired
// entries of both kinds, so they cost space only until their SST files are
// compacted — no sweep on the writer thread.
//
// NOTE: the writer thread is the only writer of its stream's keys; several
//       objects (one per stream name) share one store. Open one object per
//       (store, stream) (stages::workflow_stream_for does).
// NOTE: the db must outlive the stream; close() the stream before the db.
#include "storage/db.h"
#include "storage/workflow_stream.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace esflow::storage {

struct embedded_stream_options {
  // Publishes waiting for the writer thread; beyond it publish() completes at
  // once with unavailable ("stream queue full").
  std::size_t max_pending = 65536;
  // Publishes written by one write set at most.
  std::size_t max_batch = 4096;
  // How long a msg id is remembered (at least; JetStream's default duplicate window).
  std::chrono::milliseconds dedupe_window = std::chrono::minutes(2);
  // Msg ids held in memory at most (~40 bytes each at the bound, ~20 MiB for
  // the default): past it the oldest is forgotten before its window ends (a
  // warning says so), and its message, published again, is stored again.
  std::size_t max_msg_ids = std::size_t{1} << 19;
  // Milliseconds since the Unix epoch; replaceable in tests.
  std::function<std::uint64_t()> now_ms;
};

class embedded_workflow_stream final : public workflow_stream {
 public:
  // invalid_config for a stream name that is not a workflow stream;
  // recovers the last position and starts the writer thread.
  static result<std::unique_ptr<embedded_workflow_stream>> open(db& database, std::string name,
                                                                embedded_stream_options options = {});
  ~embedded_workflow_stream() override;

  const std::string& name() const override;
  void publish(publish_request request, publish_callback done) override;
  result<std::vector<stream_message>> read_from(position_t after, std::size_t max) override;
  result<position_t> last_position() override;
  // NOTE: must not be called from a completion (it joins the writer thread).
  status close() override;

  struct impl;

 private:
  explicit embedded_workflow_stream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace esflow::storage
