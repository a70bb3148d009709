#include "stages/runner/saga_input.h"

#include "common/log.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
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

std::string text(const json& body, const char* field) {
  auto it = body.find(field);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
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
  auto j = json::parse(body, nullptr, false);
  if (!j.is_object())
    return error::make(errc::invalid_command, "workflow message on " + subject + " is not JSON");
  const auto saga = text(j, "saga");
  const auto sit =
      std::find_if(sagas.begin(), sagas.end(), [&](const saga_config& s) { return s.name == saga; });
  if (sit == sagas.end()) return std::optional<saga_input>();
  saga_input in;
  in.tenant = text(j, "tenant_id");
  in.saga = saga;
  in.correlation_id = text(j, "correlation_id");
  in.trace_id = text(j, "trace_id");
  const auto token_tenant = nats::decode_tenant_token(tokens[1]);
  if (!token_tenant || in.tenant != *token_tenant)
    return error::make(errc::tenant_access_denied,
                       "workflow message on " + subject + " carries tenant '" + in.tenant + "'");
  if (!schemas::is_valid_command_id(in.correlation_id))
    return error::make(errc::invalid_command,
                       "workflow message on " + subject + " has no valid correlation_id");
  json input = {{"kind", kind}};
  if (kind == "command_result") {
    const auto command_id = text(j, "command_id");
    if (command_id.empty()) return error::make(errc::invalid_command, "command result without command_id");
    in.input_id = "cmdresult:" + command_id;
    input["command_id"] = command_id;
    input["status"] = text(j, "status");
    input["code"] = text(j, "code");
    input["message"] = text(j, "message");
    input["events"] = j.contains("events") && j["events"].is_array() ? j["events"] : json::array();
    // Which command it answers (this project's addition): the saga need not guess.
    input["aggregate_type"] = text(j, "aggregate_type");
    input["aggregate_id"] = text(j, "aggregate_id");
    input["command_type"] = text(j, "command_type");
  } else if (kind == "effect_result") {
    const auto command_id = text(j, "command_id");
    if (command_id.empty()) return error::make(errc::invalid_command, "effect result without command_id");
    in.input_id = "result:" + command_id;
    input["command_id"] = command_id;
    input["effect"] = text(j, "effect");
    input["result_type"] = text(j, "result_type");
    input["payload"] = j.contains("payload") ? j["payload"] : json::object();
    if (j.contains("error") && j["error"].is_string()) input["error"] = j["error"];
  } else {
    in.input_id = text(j, "schedule_key");
    if (in.input_id.empty()) return error::make(errc::invalid_command, "reminder without schedule_key");
    input["name"] = text(j, "name");
    input["due_at"] = text(j, "due_at");
    input["payload"] = j.contains("payload") ? j["payload"] : json::object();
  }
  in.kind = kind;
  in.input_json = input.dump();
  return std::optional<saga_input>(std::move(in));
}

}  // namespace esflow::runner
