#pragma once
// The unit that flows through every esflow graph.
//
// NOTE: a message is owned by exactly one stage at a time (the one processing
// it, or the queue in front of it). Fan-out to several successors copies it.
// Destroying a message returns its admission token, so "in flight" is exactly
// the number of live messages that entered through a source.
#include "common/error.h"
#include "common/log_context.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::graph {

class admission_gate;

// Where a message's outcome goes once the pipeline is done with it (an HTTP
// request waiting on its answer, a NATS reply subject, an ack). Implemented by
// ingest stages; completed by terminal stages (publish, ack, sinks).
class reply_handle {
 public:
  virtual ~reply_handle() = default;
  // Called at most once per message by the stage that answers it.
  virtual void complete(const struct message& m) = 0;
};

// The typed per-message state of a node kind (the ingest's transport fields,
// a decoded command, its events...). Kinds extend it by inheritance
// (stages/ingest_context.h); context_as<T>() checks the dynamic type, so a
// stage wired behind the wrong producer gets nullptr, never a wrong object.
class message_context {
 public:
  virtual ~message_context() = default;
  // For wiring errors: "ingest", "command", "aggregate".
  virtual std::string_view context_name() const noexcept = 0;
  // The ids its log lines carry (tenant, correlation, trace, aggregate...):
  // views into this context, read by the stage runtime's log scope.
  virtual log_fields log_ids() const noexcept { return {}; }
};

struct message {
  message() = default;
  message(const message& other);  // copies payload, takes a fresh admission token
  message& operator=(const message&) = delete;
  ~message();

  std::string key;        // lane key (tenant/type/id for aggregates); set by a source or a stage
  std::string body;       // the payload as received or produced (JSON text for most stages)
  std::uint64_t seq = 0;  // ingest order within its source
  std::chrono::steady_clock::time_point ingest_time{};

  // Set when the message travels on an error port.
  std::optional<esflow::error> error;
  std::string error_stage;

  // Typed per-message state (see message_context). NOTE: copies of a message
  // (fan-out) share it; the loader refuses fan-out where a later stage
  // mutates it (stage_descriptor::mutates_context).
  std::shared_ptr<message_context> context;
  // The context if it is a T (or derived from T), else nullptr.
  template <typename T>
  T* context_as() const noexcept {
    return dynamic_cast<T*>(context.get());
  }

  std::shared_ptr<reply_handle> reply;

  // Admission bookkeeping (set by the engine).
  admission_gate* gate = nullptr;
};

using message_ptr = std::unique_ptr<message>;
inline message_ptr make_message() { return std::make_unique<message>(); }

// The engine's net under a stage body (stage_runtime::body): a message that
// an exception destroys while leaving process() hands its key, context,
// reply and admission token to `saved` instead of vanishing, so the engine
// answers it (internal, on the stage's error port) and nothing admitted is
// lost. Set per thread around process(); costs one thread-local load per
// destroyed message otherwise.
struct message_rescue {
  const message* target = nullptr;
  int exceptions = 0;  // std::uncaught_exceptions() when armed
  message_ptr saved;
};
extern thread_local message_rescue* t_message_rescue;

}  // namespace esflow::graph
