#pragma once
// The JetStream workflow stream (storage/workflow_stream.h, README.md
// "Workflow streams"): WORKFLOW_COMMANDS or WORKFLOW_EVENTS on a NATS
// connection; positions are stream sequences.
//
//   publish      js_PublishMsgAsync with Nats-Msg-Id = msg_id and the given
//                headers; the completion runs on nats.c's ack-handler thread
//                when the PubAck arrives (duplicate flag and sequence from it;
//                a duplicate's sequence is the first message's), or with
//                unavailable on a publish error or after publish_timeout.
//                Nothing blocks on the caller's thread.
//   read_from    stream info (first/last sequence), then STREAM.MSG.GET per
//                sequence from the stream leader (these streams have no
//                allow_direct); deleted sequences (a work queue's acked
//                messages) are skipped.
//   last_position  the stream info's last sequence.
//
// Threads: none of its own. publish() runs on the caller's thread up to the
// send; completions run on nats.c's ack-handler thread (they must not block).
//
// NOTE: every method is thread-safe; open, read_from and last_position block
//       (control plane / tools and tests).
// NOTE: the connection must outlive the stream; close() the stream first.
#include "storage/workflow_stream.h"
#include "transport/nats/nats_connection.h"
#include "transport/nats/stream_policy.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace esflow::storage::jetstream {

struct jetstream_stream_options {
  // Create or validate the stream on open (transport/nats/stream_policy.h).
  bool ensure_stream = true;
  nats::streams_config streams;
  // A publish without an ack after this long completes as unavailable (may
  // or may not be stored: publish again with the same msg id).
  std::chrono::milliseconds publish_timeout{5000};
  // JetStream API calls (stream info, message gets).
  std::chrono::milliseconds request_timeout{2000};
  // Publishes awaiting their ack; beyond it: unavailable ("too many publishes in flight").
  std::size_t max_pending = 65536;
  // read_from: sequences probed per call at most. A walk over a longer run of
  // deleted messages ends the page early; one that found nothing is
  // unavailable (never an empty page that hides later messages).
  std::uint64_t max_probes = 100000;
};

class jetstream_workflow_stream final : public workflow_stream {
 public:
  // invalid_config for an unknown stream name or an incompatible stream.
  static result<std::unique_ptr<jetstream_workflow_stream>> open(nats::nats_connection& connection,
                                                                 std::string name,
                                                                 jetstream_stream_options options = {});
  ~jetstream_workflow_stream() override;

  const std::string& name() const override;
  void publish(publish_request request, publish_callback done) override;
  result<std::vector<stream_message>> read_from(position_t after, std::size_t max) override;
  result<position_t> last_position() override;
  // Waits for the acks in flight (bounded by publish_timeout), completes the
  // rest as unavailable, then refuses new publishes.
  // NOTE: must not be called from a completion.
  status close() override;

  struct impl;

 private:
  explicit jetstream_workflow_stream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> _impl;
};

}  // namespace esflow::storage::jetstream
