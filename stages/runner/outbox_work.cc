#include "stages/runner/outbox_work.h"

#include "schemas/json_encode.h"
#include "stages/runner/json_read.h"

#include <simdjson.h>

namespace esflow::runner {

namespace dom = simdjson::dom;

result<outbox_work> parse_outbox_work(std::string_view json) {
  auto corrupt = [](std::string_view what) {
    return error::make(errc::internal, "corrupt outbox item: " + std::string(what));
  };
  // The DOM parser validates the whole item: one damaged in storage is left in place, not sent.
  thread_local dom::parser parser;
  dom::object obj;
  if (parser.parse(json.data(), json.size()).get_object().get(obj)) return corrupt("not a JSON object");
  outbox_work w;
  const std::pair<std::string_view, std::string*> texts[] = {{"kind", &w.kind},
                                                             {"saga", &w.saga},
                                                             {"correlation_id", &w.correlation_id},
                                                             {"command_id", &w.command_id},
                                                             {"trace_id", &w.trace_id},
                                                             {"aggregate_type", &w.aggregate_type},
                                                             {"aggregate_id", &w.aggregate_id},
                                                             {"effect", &w.effect}};
  auto wrong_type = [&](std::string_view key) {
    return corrupt("field '" + std::string(key) + "' has the wrong type");
  };
  for (const auto& [key, field] : texts)
    if (!read_text(obj, key, *field)) return wrong_type(key);
  if (dom::element e; !obj["created_ms"].get(e) && e.get_uint64().get(w.created_ms))
    return wrong_type("created_ms");
  if (dom::element e; !obj["payload"].get(e)) {
    dom::object p;
    if (e.get_object().get(p)) return wrong_type("payload");
    w.payload = simdjson::minify(p);
    w.command_type = text_field(p, "type");
  }
  if (std::string_view a; !obj["answer"].get_string().get(a))
    w.answer.emplace(a);  // anything else is no answer
  return w;
}

std::string command_envelope(const outbox_work& w, const std::string& tenant) {
  std::string out;
  out.reserve(192 + w.payload.size());
  schemas::json_writer j(out);
  j.begin_object();
  j.key("command_id").value(w.command_id);
  j.key("aggregate_type").value(w.aggregate_type);
  j.key("aggregate_id").value(w.aggregate_id);
  j.key("payload").raw(w.payload);
  j.key("metadata").begin_object();
  j.key("saga").value(w.saga);
  j.key("correlation_id").value(w.correlation_id);
  j.end_object();
  if (!tenant.empty()) j.key("tenant_id").value(tenant);
  j.end_object();
  return out;
}

std::string command_result_body(const outbox_work& w, const std::string& tenant, bool accepted,
                                std::string_view code, std::string_view message,
                                std::string_view events_json) {
  std::string out;
  out.reserve(320 + message.size() + events_json.size());
  schemas::json_writer j(out);
  j.begin_object();
  j.key("tenant_id").value(tenant);
  j.key("saga").value(w.saga);
  j.key("correlation_id").value(w.correlation_id);
  j.key("command_id").value(w.command_id);
  j.key("aggregate_type").value(w.aggregate_type);
  j.key("aggregate_id").value(w.aggregate_id);
  j.key("command_type").value(w.command_type);
  j.key("trace_id").value(w.trace_id);
  j.key("status").value(accepted ? "accepted" : "rejected");
  j.key("code").value(code);
  j.key("message").value(message);
  j.key("events").raw(events_json.empty() ? std::string_view("[]") : events_json);
  j.end_object();
  return out;
}

std::string effect_command_body(const outbox_work& w, const std::string& tenant) {
  std::string out;
  out.reserve(256 + w.payload.size());
  schemas::json_writer j(out);
  j.begin_object();
  j.key("tenant_id").value(tenant);
  j.key("command_id").value(w.command_id);
  j.key("effect").value(w.effect);
  j.key("payload").raw(w.payload);
  j.key("metadata").begin_object();
  j.key("saga").value(w.saga);
  j.end_object();
  j.key("correlation_id").value(w.correlation_id);
  j.key("trace_id").value(w.trace_id);
  j.end_object();
  return out;
}

std::string item_with_answer(std::string_view item_json, std::string_view answer) {
  auto end = item_json.find_last_of('}');
  if (end == std::string_view::npos) end = item_json.size();
  std::string out(item_json.substr(0, end));
  std::string tail;
  schemas::json_writer j(tail);
  j.value(answer);
  const bool empty = out.find_first_not_of(" \t\r\n{") == std::string::npos;
  out += empty ? "\"answer\":" : ",\"answer\":";
  out += tail;
  out += '}';
  return out;
}

std::string events_of_command_result(std::string_view result_json) {
  thread_local dom::parser parser;
  dom::array events;
  if (parser.parse(result_json.data(), result_json.size())["events"].get_array().get(events)) return "[]";
  return simdjson::minify(events);
}

}  // namespace esflow::runner
