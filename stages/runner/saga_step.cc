#include "stages/runner/saga_step.h"

#include "common/sha256.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"
#include "stages/runner/json_read.h"

#include <simdjson.h>

#include <map>

namespace esflow::runner {
namespace {

constexpr std::uint64_t k_max_after_ms = 366ULL * 24 * 3600 * 1000;
constexpr std::size_t k_max_items = 256;

bool is_schedule_name(const std::string& n) {
  return !n.empty() && n.size() <= 64 && schemas::is_valid_command_id(n);
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

namespace {

namespace dom = simdjson::dom;

// The stored record's parts (saga_step.h has its shape).
struct record_parts {
  std::string state = "null";  // JSON: an object, or what the program left (not handed back unless an object)
  bool state_is_object = false;
  bool done = false;
  std::map<std::string, std::uint64_t> schedules;  // name -> due ms
  std::uint64_t inputs = 0;
};

bool read_record(const std::string& text, record_parts& r) {
  thread_local dom::parser parser;
  dom::object o;
  if (parser.parse(text.data(), text.size()).get_object().get(o)) return false;
  for (auto [key, v] : o) {
    if (key == "state") {
      r.state_is_object = v.is_object();
      r.state = simdjson::minify(v);
    } else if (key == "done") {
      bool b = false;
      r.done = !v.get_bool().get(b) && b;
    } else if (key == "inputs") {
      std::uint64_t n = 0;
      r.inputs = v.get_uint64().get(n) ? 0 : n;
    } else if (key == "schedules") {
      dom::object so;
      if (v.get_object().get(so)) continue;
      for (auto [name, due] : so) {
        std::uint64_t ms = 0;
        if (!due.get_uint64().get(ms)) r.schedules[std::string(name)] = ms;
      }
    }
  }
  return true;
}

std::string write_record(const record_parts& r) {
  std::string out;
  out.reserve(64 + r.state.size() + 48 * r.schedules.size());
  schemas::json_writer w(out);
  w.begin_object();
  w.key("done").value(r.done);
  w.key("inputs").value(r.inputs);
  w.key("schedules").begin_object();
  for (const auto& [name, due] : r.schedules) w.key(name).value(due);
  w.end_object();
  w.key("state").raw(r.state);
  w.end_object();
  return out;
}

// Lua's empty table reads as {} (an object): an empty list either way.
bool list_of(dom::object result, const char* field, std::vector<dom::element>& out, std::string& problem) {
  dom::element e;
  if (result[field].get(e) || e.is_null() || (e.is_object() && dom::object(e).size() == 0)) return true;
  dom::array list;
  if (e.get_array().get(list)) {
    problem = std::string("'") + field + "' must be a list";
    return false;
  }
  if (list.size() > k_max_items) {
    problem = std::string("'") + field + "' holds more than " + std::to_string(k_max_items) + " items";
    return false;
  }
  out.assign(list.begin(), list.end());
  return true;
}

}  // namespace

result<step_result> run_step(const saga_config& saga, runtime::sandbox& sandbox,
                             const std::optional<std::string>& record_json, const saga_input& input,
                             std::uint64_t now_ms) {
  const auto context = "tenant=" + input.tenant + " saga=" + saga.name +
                       " correlation=" + input.correlation_id + " input=" + input.input_id;
  auto malformed = [&](const std::string& what) {
    return error::make(errc::program_error, "on_event returned a malformed result: " + what, context);
  };
  record_parts record;
  if (record_json && !read_record(*record_json, record))
    return error::make(errc::internal, "stored saga record is not JSON", context);
  step_result out;
  if (record.done) {
    out.skipped = true;
    out.record_json = *record_json;
    return out;
  }
  auto& schedules = record.schedules;
  // A reminder fired: its schedule is gone.
  if (input.kind == "reminder") {
    thread_local dom::parser parser;
    dom::element in;
    if (!parser.parse(input.input_json.data(), input.input_json.size()).get(in) && in.is_object())
      schedules.erase(text_field(in, "name"));
  }

  std::optional<runtime::state_handle> state;
  if (record.state_is_object) {
    auto h = sandbox.state_from_json(record.state);
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
  thread_local dom::parser result_parser;
  dom::object result;
  if (result_parser.parse(text_result.value().data(), text_result.value().size()).get_object().get(result))
    return malformed("not a table");
  dom::element st;
  if (result["state"].get(st) || !(st.is_object() || st.is_array()))
    return malformed("'state' must be a table (the instance's new state)");
  record.state = st.is_array() && dom::array(st).size() == 0 ? std::string("{}") : simdjson::minify(st);
  if (dom::element d; !result["done"].get(d)) {
    if (d.get_bool().get(out.done)) return malformed("'done' must be a boolean");
  }

  std::string problem;
  std::vector<dom::element> work, adds, cancels;
  if (!list_of(result, "work", work, problem) || !list_of(result, "schedules", adds, problem) ||
      !list_of(result, "cancel", cancels, problem))
    return malformed(problem);

  std::size_t i = 0;
  for (dom::element w : work) {
    const auto where = "work[" + std::to_string(i + 1) + "]: ";
    if (!w.is_object()) return malformed(where + "must be a table");
    const auto kind = text_field(w, "kind");
    dom::element payload;
    if (w["payload"].get(payload) || !payload.is_object())
      return malformed(where + "'payload' must be a table");
    const auto command_id =
        derive_command_id(input.tenant, saga.name, input.correlation_id, input.input_id, i);
    std::string item;
    schemas::json_writer j(item);
    j.begin_object();
    j.key("kind").value(kind);
    j.key("tenant_id").value(input.tenant);
    j.key("saga").value(saga.name);
    j.key("correlation_id").value(input.correlation_id);
    j.key("command_id").value(command_id);
    j.key("trace_id").value(input.trace_id);
    j.key("created_ms").value(now_ms);
    j.key("payload").raw(simdjson::minify(payload));
    if (kind == "command") {
      const auto type = text_field(w, "aggregate_type");
      const auto id = text_field(w, "aggregate_id");
      if (!schemas::is_valid_aggregate_type(type)) return malformed(where + "'aggregate_type' is not a type");
      if (!schemas::is_valid_aggregate_id(id)) return malformed(where + "'aggregate_id' is not an id");
      if (text_field(payload, "type").empty())
        return malformed(where + "'payload.type' (the command) is missing");
      j.key("aggregate_type").value(type);
      j.key("aggregate_id").value(id);
    } else if (kind == "effect") {
      const auto effect = text_field(w, "effect");
      if (!schemas::is_valid_aggregate_type(effect))
        return malformed(where + "'effect' is not an effect name");
      j.key("effect").value(effect);
    } else {
      return malformed(where + "'kind' must be \"command\" or \"effect\"");
    }
    j.end_object();
    out.work.push_back({kind, command_id, std::move(item)});
    ++i;
  }

  auto cancel_named = [&](const std::string& name) {
    auto it = schedules.find(name);
    if (it == schedules.end()) return;
    out.cancel.push_back({it->second, input.tenant, saga.name, input.correlation_id, name});
    schedules.erase(it);
  };
  i = 0;
  for (dom::element c : cancels) {
    std::string_view name;
    if (c.get_string().get(name) || !is_schedule_name(std::string(name)))
      return malformed("cancel[" + std::to_string(i + 1) + "] must be a schedule name");
    cancel_named(std::string(name));
    ++i;
  }
  i = 0;
  for (dom::element s : adds) {
    const auto where = "schedules[" + std::to_string(i + 1) + "]: ";
    ++i;
    if (!s.is_object()) return malformed(where + "must be a table");
    const auto name = text_field(s, "name");
    if (!is_schedule_name(name)) return malformed(where + "'name' must match [A-Za-z0-9_-]{1,64}");
    std::int64_t after = -1;
    if (dom::element a; s["after_ms"].get(a) || !(a.is_int64() || a.is_uint64()) ||
                        a.get_int64().get(after) || after < 0 ||
                        static_cast<std::uint64_t>(after) > k_max_after_ms)
      return malformed(where + "'after_ms' must be an integer from 0 to one year");
    cancel_named(name);  // a schedule of the same name is replaced
    storage::schedule_key key{now_ms + static_cast<std::uint64_t>(after), input.tenant, saga.name,
                              input.correlation_id, name};
    dom::element sp;
    const std::string payload = s["payload"].get(sp) ? std::string("{}") : simdjson::minify(sp);
    std::string value;
    schemas::json_writer j(value);
    j.begin_object();
    j.key("tenant_id").value(input.tenant);
    j.key("saga").value(saga.name);
    j.key("correlation_id").value(input.correlation_id);
    j.key("name").value(name);
    j.key("due_ms").value(key.due_ms);
    j.key("payload").raw(payload);
    j.key("schedule_key").value(schedule_key_text(key));
    j.key("trace_id").value(input.trace_id);
    j.end_object();
    schedules[name] = key.due_ms;
    out.add.push_back({std::move(key), std::move(value)});
  }
  if (out.done) {
    // A finished instance fires nothing more.
    while (!schedules.empty()) cancel_named(schedules.begin()->first);
  }
  record.done = out.done;
  ++record.inputs;
  out.record_json = write_record(record);
  return out;
}

}  // namespace esflow::runner
