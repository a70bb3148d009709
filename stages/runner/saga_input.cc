#include "stages/runner/saga_input.h"

#include "common/log.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/runner/json_read.h"
#include "transport/nats/subjects.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace esflow::runner {
namespace {

using nlohmann::json;

const json* at_path(const json& root, std::string_view path) {
  const json* at = &root;
  std::size_t start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const auto name =
        std::string(path.substr(start, dot == std::string_view::npos ? path.npos : dot - start));
    if (!at->is_object()) return nullptr;
    auto it = at->find(name);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string_view::npos) return at;
    start = dot + 1;
  }
}

std::optional<std::string> correlation_of(const saga_config& s, const schemas::event& e) {
  std::string v;
  if (s.correlate_by == "aggregate_id") {
    v = e.aggregate_id;
  } else if (s.correlate_by == "event_id") {
    v = e.event_id;
  } else if (s.correlate_by == "command_id") {
    v = e.command_id;
  } else if (s.correlate_by == "correlation_id") {
    v = e.correlation_id;
  } else {
    const auto payload = json::parse(e.payload_json, nullptr, false);
    const auto* f = payload.is_discarded() ? nullptr : at_path(payload, s.correlate_by.substr(8));
    if (f == nullptr) return std::nullopt;
    if (f->is_string()) {
      v = f->get<std::string>();
    } else if (f->is_number_integer()) {
      v = f->dump();
    } else {
      return std::nullopt;
    }
  }
  if (!schemas::is_valid_command_id(v)) return std::nullopt;  // same shape: [A-Za-z0-9_-]{1,128}
  return v;
}

// The fields of a workflow message the saga input is made of: strings ("" when absent or not a
// string), `events` (an array) and `payload` (any value) as raw JSON. One simdjson pass; nullopt
// when the body is not a JSON object.
struct workflow_fields {
  std::string saga, tenant_id, correlation_id, trace_id, command_id, status, code, message;
  std::string aggregate_type, aggregate_id, command_type, effect, result_type, schedule_key, name, due_at;
  std::string events, payload;
  std::optional<std::string> error;
};

std::optional<workflow_fields> read_workflow_fields(std::string_view body) {
  // The DOM parser validates the whole message: a malformed value anywhere refuses it, as before.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size()).get_object().get(obj)) return std::nullopt;
  workflow_fields f;
  for (auto [key, field] : {std::pair{"saga", &f.saga},
                            {"tenant_id", &f.tenant_id},
                            {"correlation_id", &f.correlation_id},
                            {"trace_id", &f.trace_id},
                            {"command_id", &f.command_id},
                            {"status", &f.status},
                            {"code", &f.code},
                            {"message", &f.message},
                            {"aggregate_type", &f.aggregate_type},
                            {"aggregate_id", &f.aggregate_id},
                            {"command_type", &f.command_type},
                            {"effect", &f.effect},
                            {"result_type", &f.result_type},
                            {"schedule_key", &f.schedule_key},
                            {"name", &f.name},
                            {"due_at", &f.due_at}})
    *field = text_field(obj, key);
  simdjson::dom::element e;
  if (!obj["events"].get(e) && e.is_array()) f.events = simdjson::minify(e);
  if (!obj["payload"].get(e)) f.payload = simdjson::minify(e);
  if (std::string_view s; !obj["error"].get_string().get(s)) f.error = std::string(s);
  return f;
}

}  // namespace

std::string instance_key(const std::string& tenant, const std::string& saga,
                         const std::string& correlation_id) {
  return tenant + '\x1f' + saga + '\x1f' + correlation_id;
}

std::vector<saga_input> inputs_of_commit(const std::vector<saga_config>& sagas, const schemas::commit& c) {
  std::vector<saga_input> out;
  for (const auto& s : sagas) {
    for (const auto& e : c.events) {
      if (!s.triggered_by(c.aggregate_type, e.event_type)) continue;
      auto cid = correlation_of(s, e);
      if (!cid) {
        ESFLOW_WARN("runner", "saga {}: event {} ({}/{} v{}) has no usable '{}': skipped", s.name, e.event_id,
                    e.aggregate_type, e.aggregate_id, e.version, s.correlate_by);
        continue;
      }
      // The event as the contract encodes it, plus "kind": spliced in, not parsed and written again.
      auto input = schemas::encode_event(e);
      input.insert(1, R"("kind":"event",)");
      out.push_back({c.tenant_id, s.name, *cid, e.event_id, "event", std::move(input), e.trace_id});
    }
  }
  return out;
}

result<std::optional<saga_input>> input_of_workflow_message(const std::vector<saga_config>& sagas,
                                                            const std::string& subject,
                                                            std::string_view body) {
  // tenant.<t>.<kind>.<name>
  std::vector<std::string> tokens;
  for (std::size_t start = 0;;) {
    const auto dot = subject.find('.', start);
    tokens.push_back(subject.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (tokens.size() != 4 || tokens[0] != "tenant")
    return error::make(errc::invalid_command,
                       "workflow subject '" + subject + "' is not tenant.<t>.<kind>.<name>");
  const auto& kind = tokens[2];
  if (kind != "command_result" && kind != "effect_result" && kind != "reminder")
    return std::optional<saga_input>();
  auto fields = read_workflow_fields(body);
  if (!fields) return error::make(errc::invalid_command, "workflow message on " + subject + " is not JSON");
  const auto& f = *fields;
  const auto sit =
      std::find_if(sagas.begin(), sagas.end(), [&](const saga_config& s) { return s.name == f.saga; });
  if (sit == sagas.end()) return std::optional<saga_input>();
  saga_input in;
  in.tenant = f.tenant_id;
  in.saga = f.saga;
  in.correlation_id = f.correlation_id;
  in.trace_id = f.trace_id;
  const auto token_tenant = nats::decode_tenant_token(tokens[1]);
  if (!token_tenant || in.tenant != *token_tenant)
    return error::make(errc::tenant_access_denied,
                       "workflow message on " + subject + " carries tenant '" + in.tenant + "'");
  if (!schemas::is_valid_command_id(in.correlation_id))
    return error::make(errc::invalid_command,
                       "workflow message on " + subject + " has no valid correlation_id");
  // The program's input, written directly (the message's values copied, escaped again).
  std::string input;
  input.reserve(192 + body.size());
  schemas::json_writer w(input);
  w.begin_object();
  w.key("kind").value(kind);
  if (kind == "command_result") {
    if (f.command_id.empty()) return error::make(errc::invalid_command, "command result without command_id");
    in.input_id = "cmdresult:" + f.command_id;
    w.key("command_id").value(f.command_id);
    w.key("status").value(f.status);
    w.key("code").value(f.code);
    w.key("message").value(f.message);
    w.key("events").raw(f.events.empty() ? std::string_view("[]") : std::string_view(f.events));
    // Which command it answers (this project's addition): the saga need not guess.
    w.key("aggregate_type").value(f.aggregate_type);
    w.key("aggregate_id").value(f.aggregate_id);
    w.key("command_type").value(f.command_type);
  } else if (kind == "effect_result") {
    if (f.command_id.empty()) return error::make(errc::invalid_command, "effect result without command_id");
    in.input_id = "result:" + f.command_id;
    w.key("command_id").value(f.command_id);
    w.key("effect").value(f.effect);
    w.key("result_type").value(f.result_type);
    w.key("payload").raw(f.payload.empty() ? std::string_view("{}") : std::string_view(f.payload));
    if (f.error) w.key("error").value(*f.error);
  } else {
    in.input_id = f.schedule_key;
    if (in.input_id.empty()) return error::make(errc::invalid_command, "reminder without schedule_key");
    w.key("name").value(f.name);
    w.key("due_at").value(f.due_at);
    w.key("payload").raw(f.payload.empty() ? std::string_view("{}") : std::string_view(f.payload));
  }
  w.end_object();
  in.kind = kind;
  in.input_json = std::move(input);
  return std::optional<saga_input>(std::move(in));
}

}  // namespace esflow::runner
