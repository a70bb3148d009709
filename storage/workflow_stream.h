#pragma once
// A workflow stream: the runner's message streams of docs/contract.md
// "Streams" — WORKFLOW_COMMANDS (effect commands, a work queue) and
// WORKFLOW_EVENTS (effect results, reminders, command results). One
// interface, two backends like the event log: embedded (the data
// directory's RocksDB, for `esflow dev`, tests and single-machine use) and
// JetStream (the real streams; consumers there are durable pull consumers,
// stages/nats `jetstream.consumer`).
//
// Publishing is idempotent by msg_id (JetStream's Nats-Msg-Id; the embedded
// backend remembers ids for at least the duplicate window): a second publish
// of an id answers the first one's position with duplicate=true and stores
// nothing.
//
// NOTE: every method is thread-safe.
// NOTE: done runs exactly once, on the backend's thread (or before publish()
//       returns), after the message is durable per the store's durability
//       (embedded) or acknowledged by the server (JetStream); it must not
//       block.
// NOTE: read_from sees messages in position order without holes in what
//       has completed (positions are per stream, growing, not necessarily
//       contiguous).
#include "common/result.h"
#include "schemas/envelopes.h"
#include "storage/write_set.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace esflow::storage {

using schemas::position_t;

using message_headers = std::vector<std::pair<std::string, std::string>>;

struct stream_message {
  position_t position = 0;  // the stream sequence
  std::string subject;      // e.g. tenant.acme.reminder.Transfer (docs/contract.md "NATS subjects")
  std::string msg_id;       // its Nats-Msg-Id
  message_headers headers;  // tenant-id, x-correlation-id, traceparent, ...
  std::string body;         // JSON (docs/contract.md "Runner node")
};

struct publish_request {
  std::string subject;
  std::string msg_id;  // required: the idempotency key of the publish
  message_headers headers;
  std::string body;
  // Node-store writes that must not become durable before the message (the
  // relay's delete of the item it published). A backend that keeps its
  // messages in that store (embedded) writes them in the SAME write as the
  // message, all-or-none, also when msg_id is a duplicate, and says so in
  // publish_ack::wrote_with; otherwise (JetStream) they are the caller's to
  // write after the ack.
  std::shared_ptr<write_set> with;
};

struct publish_ack {
  position_t position = 0;
  bool duplicate = false;   // an earlier publish of msg_id is the answer
  bool wrote_with = false;  // the request's `with` writes are stored with the message
};

class workflow_stream {
 public:
  using publish_callback = std::function<void(result<publish_ack>)>;

  virtual ~workflow_stream() = default;

  // WORKFLOW_COMMANDS or WORKFLOW_EVENTS.
  virtual const std::string& name() const = 0;

  // Outcomes: ok; invalid_command (empty msg_id, a subject the stream does
  // not carry); unavailable (storage or server down, queue full, closed:
  // the message may or may not be stored; publish again with the same id).
  virtual void publish(publish_request request, publish_callback done) = 0;

  // Messages with position > after, in position order, at most max
  // (embedded followers; on JetStream, tools and tests).
  virtual result<std::vector<stream_message>> read_from(position_t after, std::size_t max) = 0;

  // The position of the last stored message (0: empty).
  virtual result<position_t> last_position() = 0;

  // Completes pending publishes, then refuses new ones (unavailable). Idempotent.
  virtual status close() = 0;
};

// Blocking convenience for tests and tools (never call it from a completion).
result<publish_ack> publish_and_wait(workflow_stream& stream, publish_request request);

// The streams (docs/contract.md "Streams").
inline constexpr std::string_view workflow_commands_stream = "WORKFLOW_COMMANDS";
inline constexpr std::string_view workflow_events_stream = "WORKFLOW_EVENTS";

// The subject filters a workflow stream carries; empty for an unknown name.
std::vector<std::string_view> workflow_stream_subjects(std::string_view stream);
// NATS subject matching: `*` one token, `>` one or more trailing tokens.
bool subject_matches(std::string_view filter, std::string_view subject) noexcept;
// The publish checks both backends make before anything is sent or stored:
// invalid_command for an empty msg_id or a subject `stream` does not carry.
status check_publish(std::string_view stream, const publish_request& request);

}  // namespace esflow::storage
