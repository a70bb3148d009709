#include "transport/nats/headers.h"

#include "schemas/ids.h"
#include "transport/nats/subjects.h"

namespace esflow::nats {
namespace {

status set(natsMsg* msg, const char* key, const std::string& value) {
  auto s = natsMsgHeader_Set(msg, key, value.c_str());
  if (s != NATS_OK) {
    return error::make(errc::internal, std::string("setting header ") + key + ": " + natsStatus_GetText(s));
  }
  return {};
}

}  // namespace

std::string commit_msg_id(std::string_view tenant, std::string_view command_id) {
  auto out = tenant_token(tenant);
  out.push_back(':');
  out.append(command_id);
  return out;
}

schemas::trace_context commit_trace(const schemas::commit& c) {
  std::string incoming_traceparent;
  std::string_view correlation;
  if (!c.events.empty()) {
    const auto& e = c.events.front();
    correlation = e.correlation_id;
    // A fresh parent id under the event's trace: this publish is a new span.
    auto fresh = schemas::new_traceparent();  // 00-<32>-<16>-01
    incoming_traceparent = "00-" + e.trace_id + fresh.substr(35);
  }
  return schemas::make_trace_context(incoming_traceparent, correlation);
}

status set_common_headers(natsMsg* msg, std::string_view tenant, const schemas::trace_context& trace) {
  if (auto s = set(msg, header::tenant_id, tenant_token(tenant)); !s.ok()) return s;
  if (auto s = set(msg, header::x_correlation_id, trace.correlation_id); !s.ok()) return s;
  if (auto s = set(msg, header::correlation_id, trace.correlation_id); !s.ok()) return s;
  if (auto s = set(msg, header::traceparent, trace.traceparent); !s.ok()) return s;
  return set(msg, header::trace_id, trace.trace_id);
}

status set_commit_headers(natsMsg* msg, const schemas::commit& c, const schemas::trace_context& trace,
                          const sha256_digest& request_hash) {
  if (auto s = set_common_headers(msg, c.tenant_id, trace); !s.ok()) return s;
  if (auto s = set(msg, header::msg_id, commit_msg_id(c.tenant_id, c.command_id)); !s.ok()) return s;
  if (auto s = set(msg, header::event_count, std::to_string(c.events.size())); !s.ok()) return s;
  return set(msg, header::request_hash, request_hash.to_hex());
}

std::optional<std::string> get_header(natsMsg* msg, const char* key) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return std::nullopt;
  return std::string(value);
}

std::optional<sha256_digest> get_request_hash(natsMsg* msg) {
  auto v = get_header(msg, header::request_hash);
  if (!v) return std::nullopt;
  return sha256_digest::from_hex(*v);
}

}  // namespace esflow::nats
