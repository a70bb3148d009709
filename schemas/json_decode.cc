#include "schemas/json_decode.h"

#include "schemas/ids.h"

#include <simdjson.h>

#include <cstring>
#include <memory>
#include <string>

namespace esflow::schemas {
namespace {

namespace od = simdjson::ondemand;

// ---- per-thread parser and padded buffer ------------------------------------------

struct thread_state {
  od::parser parser;
  std::unique_ptr<char[]> buffer;
  std::size_t capacity = 0;
};

thread_state& local_state() {
  thread_local thread_state s;
  return s;
}

simdjson::error_code start(std::string_view json, std::size_t readable, od::document& doc) {
  thread_state& s = local_state();
  if (readable >= json.size() + simdjson::SIMDJSON_PADDING) {
    return s.parser.iterate(json.data(), json.size(), readable).get(doc);
  }
  const std::size_t need = json.size() + simdjson::SIMDJSON_PADDING;
  if (s.capacity < need) {
    std::size_t cap = s.capacity < 4096 ? 4096 : s.capacity;
    while (cap < need) cap *= 2;
    s.buffer = std::make_unique<char[]>(cap);  // zero-filled: padding is defined
    s.capacity = cap;
  }
  std::memcpy(s.buffer.get(), json.data(), json.size());
  std::memset(s.buffer.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  return s.parser.iterate(s.buffer.get(), json.size(), s.capacity).get(doc);
}

// ---- error helpers ------------------------------------------------------------------
// Internal readers return bool and, on failure, leave the error in ctx::err:
// the success path never builds an esflow::error (three strings) per field.

// Which envelope is being decoded: selects the code and the wording.
struct ctx {
  errc code;
  std::string_view what;  // "body", "event", ...
  error* err;
};

// A field name, possibly nested: "payload.type", "events[2].version".
struct field_name {
  std::string_view prefix;  // "" or "events" / "payload"
  std::size_t index = npos;
  std::string_view name;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  std::string str() const {
    std::string s(prefix);
    if (index != npos) {
      s += '[';
      s += std::to_string(index);
      s += ']';
    }
    if (!s.empty()) s += '.';
    s += name;
    return s;
  }
};

constexpr field_name top(std::string_view name) { return field_name{{}, field_name::npos, name}; }

bool fail(ctx& c, error e) {
  *c.err = std::move(e);
  return false;
}

bool field_error(ctx& c, const field_name& f, std::string_view what) {
  std::string msg = "field '";
  msg += f.str();
  msg += "' ";
  msg += what;
  return fail(c, error::make(c.code, std::move(msg)));
}

bool json_error(ctx& c, simdjson::error_code ec) {
  std::string msg(c.what);
  switch (ec) {
    case simdjson::EMPTY:
      msg += " is empty";
      break;
    case simdjson::TRAILING_CONTENT:
      msg += " has trailing content after the JSON value";
      break;
    default:
      msg += " is not valid JSON: ";
      msg += simdjson::error_message(ec);
  }
  return fail(c, error::make(c.code, std::move(msg)));
}

bool missing(ctx& c, const field_name& f) { return field_error(c, f, "is required"); }

inline std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// True when a value that failed a typed read is JSON null. A failed typed
// read (INCORRECT_TYPE) does not consume the value, so it can be inspected.
bool value_is_null(od::value& v) {
  od::json_type t;
  return v.type().get(t) == simdjson::SUCCESS && t == od::json_type::null;
}

// ---- typed field readers ----------------------------------------------------------
// The typed read is tried first (the common case); only on INCORRECT_TYPE is
// the value's type looked at, to word the error or to accept null for
// optional fields (reported through `is_null`).

bool read_string(od::value& v, ctx& c, const field_name& f, std::string& out, bool* is_null = nullptr) {
  std::string_view sv;
  if (auto ec = v.get_string().get(sv)) {
    if (ec != simdjson::INCORRECT_TYPE) return json_error(c, ec);
    if (is_null != nullptr && value_is_null(v)) {
      *is_null = true;
      return true;
    }
    return field_error(c, f, "must be a string");
  }
  out.assign(sv.data(), sv.size());
  return true;
}

bool read_u64(od::value& v, ctx& c, const field_name& f, std::uint64_t& out) {
  if (auto ec = v.get_uint64().get(out)) {
    if (ec == simdjson::INCORRECT_TYPE || ec == simdjson::NUMBER_OUT_OF_RANGE ||
        ec == simdjson::NUMBER_ERROR) {
      return field_error(c, f, "must be a non-negative integer");
    }
    return json_error(c, ec);
  }
  return true;
}

bool read_bool(od::value& v, ctx& c, const field_name& f, bool& out) {
  if (auto ec = v.get_bool().get(out)) {
    if (ec == simdjson::INCORRECT_TYPE) return field_error(c, f, "must be a boolean");
    return json_error(c, ec);
  }
  return true;
}

// Starts an object value; null is accepted when is_null is given.
bool start_object(od::value& v, ctx& c, const field_name& f, od::object& obj, bool* is_null = nullptr) {
  if (auto ec = v.get_object().get(obj)) {
    if (ec != simdjson::INCORRECT_TYPE) return json_error(c, ec);
    if (is_null != nullptr && value_is_null(v)) {
      *is_null = true;
      return true;
    }
    return field_error(c, f, "must be an object");
  }
  return true;
}

// The exact text of an object value (consumes it).
bool read_object_raw(od::value& v, ctx& c, const field_name& f, std::string& out, bool* is_null = nullptr) {
  od::object obj;
  bool null_seen = false;
  if (!start_object(v, c, f, obj, is_null != nullptr ? &null_seen : nullptr)) return false;
  if (null_seen) {
    *is_null = true;
    return true;
  }
  std::string_view raw;
  if (auto ec = obj.raw_json().get(raw)) return json_error(c, ec);
  raw = trim_right(raw);
  out.assign(raw.data(), raw.size());
  return true;
}

// A field's key. Keys without escapes (all of ours) are read in place, which
// skips the parser's unescape call; a key with a backslash is unescaped.
// Stage 1 guarantees the closing quote, and with no backslash before it the
// first quote is the closing one.
inline bool read_key(od::field& field, std::string_view& key) {
  const char* begin = field.key().raw();
  const char* p = begin;
  while (*p != '"') {
    if (*p == '\\') return field.unescaped_key().get(key) == simdjson::SUCCESS;
    ++p;
  }
  key = std::string_view(begin, static_cast<std::size_t>(p - begin));
  return true;
}

// Iterates the fields of `obj` once, in document order, calling
// on_field(key, value) -> bool. Unconsumed values are skipped by simdjson.
template <typename F>
bool for_each_field(od::object& obj, ctx& c, F&& on_field) {
  for (auto field_result : obj) {
    // References, not copies: copying simdjson's small iterator structs here
    // cost store-forwarding stalls that showed up in profiles.
    if (auto ec = field_result.error()) return json_error(c, ec);
    od::field& field = field_result.value_unsafe();
    std::string_view key;
    if (!read_key(field, key)) return json_error(c, simdjson::STRING_ERROR);
    od::value& v = field.value();
    if (!on_field(key, v)) return false;
  }
  return true;
}

bool root_object(std::string_view json, std::size_t readable, ctx& c, od::document& doc, od::object& obj) {
  if (json.empty()) return json_error(c, simdjson::EMPTY);
  if (auto ec = start(json, readable, doc)) return json_error(c, ec);
  if (auto ec = doc.get_object().get(obj)) {
    if (ec != simdjson::INCORRECT_TYPE) return json_error(c, ec);
    // A root that is not even a JSON value ("hello") is not JSON at all.
    od::json_type t;
    if (auto type_ec = doc.type().get(t)) return json_error(c, type_ec);
    std::string msg(c.what);
    msg += " must be a JSON object";
    return fail(c, error::make(c.code, std::move(msg)));
  }
  return true;
}

// After the root object was iterated: nothing but whitespace may follow.
bool expect_end(od::document& doc, ctx& c) {
  const char* loc = nullptr;
  if (doc.current_location().get(loc) == simdjson::SUCCESS) return json_error(c, simdjson::TRAILING_CONTENT);
  return true;
}

// ---- event (shared by decode_event, commit and command_result) --------------------

enum event_required : unsigned {
  k_ev_event_id = 1,
  k_ev_aggregate_type = 2,
  k_ev_aggregate_id = 4,
  k_ev_version = 8,
  k_ev_event_type = 16,
  k_ev_payload = 32,
  k_ev_all = 63,
};

bool read_event_object(od::object& obj, ctx& c, std::string_view prefix, std::size_t index, event& e) {
  unsigned seen = 0;
  const auto f = [&](std::string_view name) { return field_name{prefix, index, name}; };
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> bool {
    if (key == "tenant_id") return read_string(v, c, f(key), e.tenant_id);
    if (key == "event_id") {
      seen |= k_ev_event_id;
      return read_string(v, c, f(key), e.event_id);
    }
    if (key == "aggregate_type") {
      seen |= k_ev_aggregate_type;
      return read_string(v, c, f(key), e.aggregate_type);
    }
    if (key == "aggregate_id") {
      seen |= k_ev_aggregate_id;
      return read_string(v, c, f(key), e.aggregate_id);
    }
    if (key == "version") {
      seen |= k_ev_version;
      return read_u64(v, c, f(key), e.version);
    }
    if (key == "event_type") {
      seen |= k_ev_event_type;
      return read_string(v, c, f(key), e.event_type);
    }
    if (key == "payload") {
      seen |= k_ev_payload;
      return read_object_raw(v, c, f(key), e.payload_json);
    }
    if (key == "command_id") return read_string(v, c, f(key), e.command_id);
    if (key == "correlation_id") return read_string(v, c, f(key), e.correlation_id);
    if (key == "trace_id") return read_string(v, c, f(key), e.trace_id);
    if (key == "timestamp") return read_string(v, c, f(key), e.timestamp);
    return true;
  });
  if (!ok) return false;
  if (seen != k_ev_all) {
    if (!(seen & k_ev_event_id)) return missing(c, f("event_id"));
    if (!(seen & k_ev_aggregate_type)) return missing(c, f("aggregate_type"));
    if (!(seen & k_ev_aggregate_id)) return missing(c, f("aggregate_id"));
    if (!(seen & k_ev_version)) return missing(c, f("version"));
    if (!(seen & k_ev_event_type)) return missing(c, f("event_type"));
    return missing(c, f("payload"));
  }
  return true;
}

bool read_events(od::value& v, ctx& c, std::vector<event>& out) {
  od::array arr;
  if (auto ec = v.get_array().get(arr)) {
    if (ec == simdjson::INCORRECT_TYPE) return field_error(c, top("events"), "must be an array");
    return json_error(c, ec);
  }
  std::size_t i = 0;
  for (auto el_result : arr) {
    od::value el;
    if (auto ec = el_result.get(el)) return json_error(c, ec);
    od::object obj;
    if (auto ec = el.get_object().get(obj)) {
      if (ec != simdjson::INCORRECT_TYPE) return json_error(c, ec);
      const std::string name = "events[" + std::to_string(i) + "]";
      return field_error(c, top(name), "must be an object");
    }
    event& e = out.emplace_back();
    if (!read_event_object(obj, c, "events", i, e)) return false;
    ++i;
  }
  return true;
}

// payload: an object with a string `type`; keeps the object's exact text.
bool read_payload(od::document& doc, od::value& v, ctx& c, command& cmd) {
  const field_name type_name{"payload", field_name::npos, "type"};
  const char* begin = v.raw_json_token().data();
  od::object obj;
  if (!start_object(v, c, top("payload"), obj)) return false;
  bool has_type = false;
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& fv) -> bool {
    if (key != "type") return true;
    has_type = true;
    return read_string(fv, c, type_name, cmd.payload_type);
  });
  if (!ok) return false;
  if (!has_type) return missing(c, type_name);
  if (cmd.payload_type.empty()) return field_error(c, type_name, "must not be empty");
  // The object is consumed: the iterator stands on the token after its '}'.
  // A root object always closes after the payload, so there is such a token.
  const char* end = nullptr;
  if (auto ec = doc.current_location().get(end)) return json_error(c, ec);
  const std::string_view raw = trim_right(std::string_view(begin, static_cast<std::size_t>(end - begin)));
  cmd.payload_json.assign(raw.data(), raw.size());
  return true;
}

bool set_invalid(ctx& c, status s) {
  if (s.ok()) return true;
  return fail(c, std::move(s).err());
}

bool decode_command_into(std::string_view json, std::size_t readable, ctx& c, command_fields& out) {
  od::document doc;
  od::object obj;
  if (!root_object(json, readable, c, doc, obj)) return false;
  command& cmd = out.cmd;
  bool has_type = false;
  bool has_payload = false;
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> bool {
    if (key == "aggregate_type") {
      has_type = true;
      return read_string(v, c, top(key), cmd.aggregate_type);
    }
    if (key == "payload") {
      has_payload = true;
      return read_payload(doc, v, c, cmd);
    }
    bool is_null = false;
    if (key == "tenant_id") {
      const bool r = read_string(v, c, top(key), cmd.tenant_id, &is_null);
      out.has_tenant_id = !is_null;
      return r;
    }
    if (key == "command_id") {
      const bool r = read_string(v, c, top(key), cmd.command_id, &is_null);
      out.has_command_id = !is_null;
      return r;
    }
    if (key == "aggregate_id") {
      const bool r = read_string(v, c, top(key), cmd.aggregate_id, &is_null);
      out.has_aggregate_id = !is_null;
      return r;
    }
    if (key == "metadata") {
      const bool r = read_object_raw(v, c, top(key), cmd.metadata_json, &is_null);
      out.has_metadata = !is_null;
      return r;
    }
    return true;
  });
  if (!ok || !expect_end(doc, c)) return false;

  if (!has_type) return missing(c, top("aggregate_type"));
  if (!has_payload) return missing(c, top("payload"));
  if (!is_valid_aggregate_type(cmd.aggregate_type))
    return set_invalid(c, validate_aggregate_type(cmd.aggregate_type));
  if (out.has_tenant_id && !cmd.tenant_id.empty() && !is_valid_tenant_id(cmd.tenant_id)) {
    return fail(c, error::make(errc::invalid_tenant,
                               cmd.tenant_id == "_" ? "field 'tenant_id' must not be '_' (reserved)"
                                                    : "field 'tenant_id' must match [A-Za-z0-9_-]{1,64}"));
  }
  if (out.has_command_id && !is_valid_command_id(cmd.command_id)) {
    return set_invalid(c, validate_command_id(cmd.command_id));
  }
  if (out.has_aggregate_id && !is_valid_aggregate_id(cmd.aggregate_id)) {
    return set_invalid(c, validate_aggregate_id(cmd.aggregate_id));
  }
  return true;
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

result<command_fields> decode_command(std::string_view json) { return decode_command(json, 0); }

result<command_fields> decode_command(std::string_view json, std::size_t readable) {
  error err;
  ctx c{errc::invalid_command, "body", &err};
  result<command_fields> out{command_fields{}};
  if (!decode_command_into(json, readable, c, out.value())) return err;
  return out;
}

result<event> decode_event(std::string_view json) {
  error err;
  ctx c{errc::internal, "event", &err};
  od::document doc;
  od::object obj;
  event e;
  if (!root_object(json, 0, c, doc, obj) || !read_event_object(obj, c, {}, field_name::npos, e) ||
      !expect_end(doc, c)) {
    return err;
  }
  return e;
}

result<commit> decode_commit(std::string_view json) {
  error err;
  ctx c{errc::internal, "commit", &err};
  od::document doc;
  od::object obj;
  if (!root_object(json, 0, c, doc, obj)) return err;
  commit out;
  unsigned seen = 0;
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> bool {
    if (key == "tenant_id") return read_string(v, c, top(key), out.tenant_id);
    if (key == "aggregate_type") {
      seen |= 1;
      return read_string(v, c, top(key), out.aggregate_type);
    }
    if (key == "aggregate_id") {
      seen |= 2;
      return read_string(v, c, top(key), out.aggregate_id);
    }
    if (key == "command_id") return read_string(v, c, top(key), out.command_id);
    if (key == "first_version") {
      seen |= 4;
      return read_u64(v, c, top(key), out.first_version);
    }
    if (key == "events") {
      seen |= 8;
      return read_events(v, c, out.events);
    }
    return true;
  });
  if (!ok || !expect_end(doc, c)) return err;
  if (!(seen & 1)) {
    missing(c, top("aggregate_type"));
    return err;
  }
  if (!(seen & 2)) {
    missing(c, top("aggregate_id"));
    return err;
  }
  if (!(seen & 4)) {
    missing(c, top("first_version"));
    return err;
  }
  if (!(seen & 8)) {
    missing(c, top("events"));
    return err;
  }
  return out;
}

result<command_result> decode_command_result(std::string_view json) {
  error err;
  ctx c{errc::internal, "command result", &err};
  od::document doc;
  od::object obj;
  if (!root_object(json, 0, c, doc, obj)) return err;
  command_result out;
  std::string status_text;
  bool has_status = false;
  bool has_code = false;
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> bool {
    if (key == "status") {
      has_status = true;
      return read_string(v, c, top(key), status_text);
    }
    if (key == "aggregate_id") return read_string(v, c, top(key), out.aggregate_id);
    if (key == "version") return read_u64(v, c, top(key), out.version);
    if (key == "position") return read_u64(v, c, top(key), out.position);
    if (key == "duplicate") return read_bool(v, c, top(key), out.duplicate);
    if (key == "events") return read_events(v, c, out.events);
    if (key == "code") {
      has_code = true;
      return read_string(v, c, top(key), out.code);
    }
    if (key == "message") return read_string(v, c, top(key), out.message);
    if (key == "retryable") return read_bool(v, c, top(key), out.retryable);
    if (key == "node") return read_string(v, c, top(key), out.node);
    return true;
  });
  if (!ok || !expect_end(doc, c)) return err;
  if (!has_status) {
    missing(c, top("status"));
    return err;
  }
  if (status_text == "accepted") {
    out.accepted = true;
  } else if (status_text == "rejected") {
    out.accepted = false;
    if (!has_code) {
      missing(c, top("code"));
      return err;
    }
  } else {
    {
      field_error(c, top("status"), "must be \"accepted\" or \"rejected\"");
      return err;
    }
  }
  return out;
}

result<snapshot> decode_snapshot(std::string_view json) {
  error err;
  ctx c{errc::internal, "snapshot", &err};
  od::document doc;
  od::object obj;
  if (!root_object(json, 0, c, doc, obj)) return err;
  snapshot out;
  unsigned seen = 0;
  const bool ok = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> bool {
    if (key == "tenant_id") return read_string(v, c, top(key), out.tenant_id);
    if (key == "aggregate_type") {
      seen |= 1;
      return read_string(v, c, top(key), out.aggregate_type);
    }
    if (key == "aggregate_id") {
      seen |= 2;
      return read_string(v, c, top(key), out.aggregate_id);
    }
    if (key == "version") {
      seen |= 4;
      return read_u64(v, c, top(key), out.version);
    }
    if (key == "log_position") return read_u64(v, c, top(key), out.log_position);
    if (key == "state") {
      seen |= 8;
      return read_object_raw(v, c, top(key), out.state_json);
    }
    if (key == "created_at") return read_string(v, c, top(key), out.created_at);
    return true;
  });
  if (!ok || !expect_end(doc, c)) return err;
  if (!(seen & 1)) {
    missing(c, top("aggregate_type"));
    return err;
  }
  if (!(seen & 2)) {
    missing(c, top("aggregate_id"));
    return err;
  }
  if (!(seen & 4)) {
    missing(c, top("version"));
    return err;
  }
  if (!(seen & 8)) {
    missing(c, top("state"));
    return err;
  }
  return out;
}

}  // namespace esflow::schemas
