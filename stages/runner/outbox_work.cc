#include "stages/runner/outbox_work.h"

#include "schemas/json_encode.h"

#include <simdjson.h>

namespace esflow::runner {
namespace {

namespace od = simdjson::ondemand;

// One parser per thread (the relay's stages run on several).
od::parser& local_parser() {
  thread_local od::parser parser;
  return parser;
}

bool read_string(od::value v, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s)) return false;
  out.assign(s);
  return true;
}

// The raw text of an object value (its bytes as stored).
bool read_object_raw(od::value v, std::string& out) {
  od::object o;
  std::string_view raw;
  if (v.get_object().get(o) || o.raw_json().get(raw)) return false;
  out.assign(raw);
  return true;
}

}  // namespace

result<outbox_work> parse_outbox_work(std::string_view json) {
  auto corrupt = [](std::string_view what) {
    return error::make(errc::internal, "corrupt outbox item: " + std::string(what));
  };
  const simdjson::padded_string padded(json);
  od::document doc;
  od::object obj;
  if (local_parser().iterate(padded).get(doc) || doc.get_object().get(obj))
    return corrupt("not a JSON object");
  outbox_work w;
  for (auto field : obj) {
    std::string_view key;
    od::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) return corrupt("unreadable field");
    bool ok = true;
    if (key == "kind")
      ok = read_string(v, w.kind);
    else if (key == "saga")
      ok = read_string(v, w.saga);
    else if (key == "correlation_id")
      ok = read_string(v, w.correlation_id);
    else if (key == "command_id")
      ok = read_string(v, w.command_id);
    else if (key == "trace_id")
      ok = read_string(v, w.trace_id);
    else if (key == "aggregate_type")
      ok = read_string(v, w.aggregate_type);
    else if (key == "aggregate_id")
      ok = read_string(v, w.aggregate_id);
    else if (key == "effect")
      ok = read_string(v, w.effect);
    else if (key == "created_ms")
      ok = !v.get_uint64().get(w.created_ms);
    else if (key == "payload")
      ok = read_object_raw(v, w.payload);
    else if (key == "answer")
      ok = read_string(v, w.answer.emplace());
    if (!ok) return corrupt("field '" + std::string(key) + "' has the wrong type");
  }
  // payload.type: a second, small parse (the object's bytes were taken whole above).
  const simdjson::padded_string payload(w.payload);
  od::document pdoc;
  std::string_view type;
  if (!local_parser().iterate(payload).get(pdoc) && !pdoc["type"].get_string().get(type))
    w.command_type.assign(type);
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
  const simdjson::padded_string padded(result_json);
  od::document doc;
  od::array events;
  std::string_view raw;
  if (local_parser().iterate(padded).get(doc) || doc["events"].get_array().get(events) ||
      events.raw_json().get(raw))
    return "[]";
  return std::string(raw);
}

}  // namespace esflow::runner
