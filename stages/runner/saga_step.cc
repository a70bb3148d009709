#include "stages/runner/saga_step.h"

#include "common/sha256.h"
#include "schemas/ids.h"

#include <nlohmann/json.hpp>

namespace esflow::runner {
namespace {

using nlohmann::json;

constexpr std::uint64_t k_max_after_ms = 366ULL * 24 * 3600 * 1000;
constexpr std::size_t k_max_items = 256;

bool is_schedule_name(const std::string& n) {
  return !n.empty() && n.size() <= 64 && schemas::is_valid_command_id(n);
}

// Lua's empty table reads as {} (an object): an empty list either way.
bool list_of(const json& result, const char* field, json& out, std::string& problem) {
  auto it = result.find(field);
  if (it == result.end() || it->is_null() || (it->is_object() && it->empty())) {
    out = json::array();
    return true;
  }
  if (!it->is_array()) {
    problem = std::string("'") + field + "' must be a list";
    return false;
  }
  if (it->size() > k_max_items) {
    problem = std::string("'") + field + "' holds more than " + std::to_string(k_max_items) + " items";
    return false;
  }
  out = *it;
  return true;
}

std::string text(const json& o, const char* f) {
  auto it = o.find(f);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string derive_command_id(const std::string& tenant, const std::string& saga,
                              const std::string& correlation_id, const std::string& input_id,
                              std::size_t index) {
  std::string material;
  for (const auto* part : {&tenant, &saga, &correlation_id, &input_id}) {
    material += std::to_string(part->size());
    material += ':';
    material += *part;
  }
  material += std::to_string(index);
  return "w" + sha256_digest::of(material).to_hex().substr(0, 40);
}

std::string schedule_key_text(const storage::schedule_key& k) {
  return "reminder:" + k.saga + ":" + k.correlation_id + ":" + k.name + ":" + std::to_string(k.due_ms);
}

result<step_result> run_step(const saga_config& saga, runtime::sandbox& sandbox,
                             const std::optional<std::string>& record_json, const saga_input& input,
                             std::uint64_t now_ms) {
  const auto context = "tenant=" + input.tenant + " saga=" + saga.name +
                       " correlation=" + input.correlation_id + " input=" + input.input_id;
  auto malformed = [&](const std::string& what) {
    return error::make(errc::program_error, "on_event returned a malformed result: " + what, context);
  };
  json record = {{"state", nullptr}, {"done", false}, {"schedules", json::object()}, {"inputs", 0}};
  if (record_json) {
    record = json::parse(*record_json, nullptr, false);
    if (!record.is_object()) return error::make(errc::internal, "stored saga record is not JSON", context);
  }
  step_result out;
  if (record.value("done", false)) {
    out.skipped = true;
    out.record_json = record.dump();
    return out;
  }
  auto& schedules = record["schedules"];
  if (!schedules.is_object()) schedules = json::object();
  // A reminder fired: its schedule is gone.
  if (input.kind == "reminder") {
    const auto in = json::parse(input.input_json, nullptr, false);
    if (in.is_object()) schedules.erase(text(in, "name"));
  }

  std::optional<runtime::state_handle> state;
  if (record["state"].is_object()) {
    auto h = sandbox.state_from_json(record["state"].dump());
    if (!h.ok()) return error::make(errc::internal, "stored saga state: " + h.err().message, context);
    state = std::move(h).value();
  }
  const auto program = saga.current_program();
  auto returned = sandbox.on_event(*program, state ? &*state : nullptr, input.input_json);
  if (!returned.ok()) {
    auto e = std::move(returned).err();
    e.context += (e.context.empty() ? "" : " ") + context;
    return e;
  }
  auto text_result = sandbox.state_to_json(returned.value());
  if (!text_result.ok()) return malformed(text_result.err().message);
  const auto result = json::parse(text_result.value(), nullptr, false);
  if (!result.is_object()) return malformed("not a table");
  auto st = result.find("state");
  if (st == result.end() || !(st->is_object() || st->is_array()))
    return malformed("'state' must be a table (the instance's new state)");
  record["state"] = st->is_array() && st->empty() ? json::object() : *st;
  if (auto d = result.find("done"); d != result.end()) {
    if (!d->is_boolean()) return malformed("'done' must be a boolean");
    out.done = d->get<bool>();
  }

  std::string problem;
  json work, adds, cancels;
  if (!list_of(result, "work", work, problem) || !list_of(result, "schedules", adds, problem) ||
      !list_of(result, "cancel", cancels, problem))
    return malformed(problem);

  for (std::size_t i = 0; i < work.size(); ++i) {
    const auto& w = work[i];
    const auto where = "work[" + std::to_string(i + 1) + "]: ";
    if (!w.is_object()) return malformed(where + "must be a table");
    const auto kind = text(w, "kind");
    const auto payload = w.find("payload");
    if (payload == w.end() || !payload->is_object()) return malformed(where + "'payload' must be a table");
    const auto command_id =
        derive_command_id(input.tenant, saga.name, input.correlation_id, input.input_id, i);
    json item = {{"kind", kind},
                 {"tenant_id", input.tenant},
                 {"saga", saga.name},
                 {"correlation_id", input.correlation_id},
                 {"command_id", command_id},
                 {"trace_id", input.trace_id},
                 {"created_ms", now_ms},
                 {"payload", *payload}};
    if (kind == "command") {
      const auto type = text(w, "aggregate_type");
      const auto id = text(w, "aggregate_id");
      if (!schemas::is_valid_aggregate_type(type)) return malformed(where + "'aggregate_type' is not a type");
      if (!schemas::is_valid_aggregate_id(id)) return malformed(where + "'aggregate_id' is not an id");
      if (text(*payload, "type").empty()) return malformed(where + "'payload.type' (the command) is missing");
      item["aggregate_type"] = type;
      item["aggregate_id"] = id;
    } else if (kind == "effect") {
      const auto effect = text(w, "effect");
      if (!schemas::is_valid_aggregate_type(effect))
        return malformed(where + "'effect' is not an effect name");
      item["effect"] = effect;
    } else {
      return malformed(where + "'kind' must be \"command\" or \"effect\"");
    }
    out.work.push_back({kind, command_id, item.dump()});
  }

  auto cancel_named = [&](const std::string& name) {
    auto it = schedules.find(name);
    if (it == schedules.end() || !it->is_number_unsigned()) return;
    out.cancel.push_back({it->get<std::uint64_t>(), input.tenant, saga.name, input.correlation_id, name});
    schedules.erase(it);
  };
  for (std::size_t i = 0; i < cancels.size(); ++i) {
    if (!cancels[i].is_string() || !is_schedule_name(cancels[i].get<std::string>()))
      return malformed("cancel[" + std::to_string(i + 1) + "] must be a schedule name");
    cancel_named(cancels[i].get<std::string>());
  }
  for (std::size_t i = 0; i < adds.size(); ++i) {
    const auto& s = adds[i];
    const auto where = "schedules[" + std::to_string(i + 1) + "]: ";
    if (!s.is_object()) return malformed(where + "must be a table");
    const auto name = text(s, "name");
    if (!is_schedule_name(name)) return malformed(where + "'name' must match [A-Za-z0-9_-]{1,64}");
    auto after = s.find("after_ms");
    if (after == s.end() || !after->is_number_integer() || after->get<std::int64_t>() < 0 ||
        after->get<std::uint64_t>() > k_max_after_ms)
      return malformed(where + "'after_ms' must be an integer from 0 to one year");
    cancel_named(name);  // a schedule of the same name is replaced
    storage::schedule_key key{now_ms + after->get<std::uint64_t>(), input.tenant, saga.name,
                              input.correlation_id, name};
    json value = {{"tenant_id", input.tenant},
                  {"saga", saga.name},
                  {"correlation_id", input.correlation_id},
                  {"name", name},
                  {"due_ms", key.due_ms},
                  {"payload", s.contains("payload") ? s["payload"] : json::object()},
                  {"schedule_key", schedule_key_text(key)},
                  {"trace_id", input.trace_id}};
    schedules[name] = key.due_ms;
    out.add.push_back({std::move(key), value.dump()});
  }
  if (out.done) {
    // A finished instance fires nothing more.
    for (auto it = schedules.begin(); it != schedules.end();) {
      const auto name = it.key();
      ++it;
      cancel_named(name);
    }
  }
  record["done"] = out.done;
  record["inputs"] = record.value("inputs", 0) + 1;
  out.record_json = record.dump();
  return out;
}

}  // namespace esflow::runner
