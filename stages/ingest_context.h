#pragma once
// The transport-neutral part of every message's context (graph::message_context),
// which every ingest stage fills and every node kind extends by inheritance:
//   ingest_context        transport, raw tenant, trace/correlation, idempotency
//                         key, request id, ack handle, the answer
//   command_context       + the decoded command (decode.command)
//   aggregate::aggregate_context  + rehydrated state, decision, result
//
// Ingest stages create the pipeline's context (stage_init::make_context: the
// node kind's most derived one, so nothing is re-allocated on the way);
// extend_context<T>() turns a less derived context into T in place (file
// ingest, tests) and refuses another kind's context (nullptr: a wiring error).
//
// NOTE: one stage at a time owns a message, so fields need no locking; the
//       loader refuses fan-out in front of a stage that writes the context.
#include "common/sha256.h"
#include "graph/message.h"
#include "schemas/envelopes.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>

namespace esflow::stages {

// Acknowledges the ingest message after the durable commit (JetStream ack;
// a NATS or HTTP reply is the answer instead). Ingests without acks leave it null.
class ingest_ack {
 public:
  virtual ~ingest_ack() = default;
  virtual void ack() = 0;
  virtual void nak() = 0;  // not processed: the transport may redeliver
};

struct ingest_context : graph::message_context {
  // --- set by the ingest ---------------------------------------------------
  std::string transport;         // "http", "nats", "jetstream", "file"
  bool tenant_given = false;     // a transport tenant exists (x-tenant-id header, subject token)
  std::string transport_tenant;  // its value (raw: tenant.gate validates it)
  std::string subject_type;      // what the transport addressed (NATS subject's type/id): wins over the body
  std::string subject_id;
  std::string subject;                // a stream message's subject (jetstream.consumer)
  std::uint64_t stream_sequence = 0;  // and its stream sequence
  std::string idempotency_key;        // HTTP Idempotency-Key
  std::string request_id;             // HTTP x-request-id, echoed
  std::string incoming_traceparent;
  std::string incoming_correlation_id;
  std::shared_ptr<ingest_ack> ack;

  // --- tenant.gate -----------------------------------------------------------
  std::string tenant;            // validated; "" in single-tenant mode
  schemas::trace_context trace;  // validated or generated
  // Counts the command as in flight for its tenant (transport/tenant_admission.h)
  // until the message, and so this context, is gone.
  std::shared_ptr<void> admission;

  // --- the kind's answering stage (e.g. aggregate.answer) ---------------------
  // The JSON answer of a message that succeeded; a rejected one travels as
  // message::error. The transport's reply sends it.
  std::string answer;

  std::string_view context_name() const noexcept override { return "ingest"; }
  // Before tenant.gate validates them, the transport's raw values.
  log_fields log_ids() const noexcept override {
    log_fields f;
    f.tenant_id = tenant.empty() ? std::string_view(transport_tenant) : std::string_view(tenant);
    f.correlation_id = trace.correlation_id.empty() ? std::string_view(incoming_correlation_id)
                                                    : std::string_view(trace.correlation_id);
    f.trace_id = trace.trace_id;
    return f;
  }
};

struct command_context : ingest_context {
  using base = ingest_context;
  command_context() = default;
  explicit command_context(ingest_context&& b) : ingest_context(std::move(b)) {}

  // --- decode.command ------------------------------------------------------------
  schemas::command cmd;          // complete: ids generated where allowed
  sha256_digest request_hash{};  // storage::request_hash(type, id, payload)
  bool decoded = false;

  std::string_view context_name() const noexcept override { return "command"; }
  log_fields log_ids() const noexcept override {
    auto f = ingest_context::log_ids();
    if (decoded) {
      f.aggregate_type = cmd.aggregate_type;
      f.aggregate_id = cmd.aggregate_id;
    }
    return f;
  }
};

using context_factory = std::function<std::shared_ptr<graph::message_context>()>;

// The context of a new ingest message: the pipeline's (stage_init::make_context),
// or the shared one when the factory is empty or makes none of this chain.
inline std::shared_ptr<ingest_context> new_ingest_context(const context_factory& make) {
  if (make) {
    if (auto c = std::dynamic_pointer_cast<ingest_context>(make())) return c;
  }
  return std::make_shared<ingest_context>();
}

// Lane key of an aggregate: tenant, type and id, separated by a byte no
// valid id contains.
inline std::string aggregate_key(const std::string& tenant, const std::string& type, const std::string& id) {
  std::string k;
  k.reserve(tenant.size() + type.size() + id.size() + 2);
  k += tenant;
  k += '\x1f';
  k += type;
  k += '\x1f';
  k += id;
  return k;
}

// m's context as T: the context itself when it is a T; a new T when there is
// none; a less derived context of T's chain moved into a new T. nullptr when
// it is another kind's context (a wiring error: answer `internal`).
template <typename T>
T* extend_context(graph::message& m) {
  if (auto* t = m.context_as<T>()) return t;
  if (!m.context) {
    auto made = std::make_shared<T>();
    T* raw = made.get();
    m.context = std::move(made);
    return raw;
  }
  if constexpr (!std::is_same_v<T, ingest_context>) {
    using B = typename T::base;
    B* b = extend_context<B>(m);
    if (b != nullptr && typeid(*m.context) == typeid(B)) {
      auto made = std::make_shared<T>(std::move(*b));
      T* raw = made.get();
      m.context = std::move(made);
      return raw;
    }
  }
  return nullptr;
}

// The same, throwing std::logic_error when the context is another kind's:
// the engine catches it at the stage boundary, answers the message
// `internal` and counts the stage's error.
template <typename T>
T& context_for(graph::message& m, std::string_view who) {
  if (auto* t = extend_context<T>(m)) return *t;
  throw std::logic_error(std::string(who) + " needs the " + std::string(T().context_name()) +
                         " context, got '" + std::string(m.context->context_name()) + "' (stage wiring)");
}

}  // namespace esflow::stages
