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

// Which envelope is being decoded: selects the code and the wording.
struct ctx {
  errc code;
  std::string_view what;  // "body", "event", ...
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

error field_error(const ctx& c, const field_name& f, std::string_view what) {
  std::string msg = "field '";
  msg += f.str();
  msg += "' ";
  msg += what;
  return error::make(c.code, std::move(msg));
}

error json_error(const ctx& c, simdjson::error_code ec) {
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
  return error::make(c.code, std::move(msg));
}

inline std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// ---- typed field readers ----------------------------------------------------------
// Each returns an error naming the field when the value has another type; null
// is reported through `is_null` so optional fields can treat it as missing.

status peek_type(od::value& v, const ctx& c, od::json_type& t) {
  if (auto ec = v.type().get(t)) return json_error(c, ec);
  return {};
}

status read_string(od::value& v, const ctx& c, const field_name& f, std::string& out,
                   bool* is_null = nullptr) {
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t == od::json_type::null && is_null != nullptr) {
    *is_null = true;
    return {};
  }
  if (t != od::json_type::string) return field_error(c, f, "must be a string");
  std::string_view sv;
  if (auto ec = v.get_string().get(sv)) return json_error(c, ec);
  out.assign(sv.data(), sv.size());
  return {};
}

status read_u64(od::value& v, const ctx& c, const field_name& f, std::uint64_t& out) {
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t != od::json_type::number) return field_error(c, f, "must be a non-negative integer");
  if (auto ec = v.get_uint64().get(out)) {
    if (ec == simdjson::INCORRECT_TYPE || ec == simdjson::NUMBER_OUT_OF_RANGE) {
      return field_error(c, f, "must be a non-negative integer");
    }
    return json_error(c, ec);
  }
  return {};
}

status read_bool(od::value& v, const ctx& c, const field_name& f, bool& out) {
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t != od::json_type::boolean) return field_error(c, f, "must be a boolean");
  if (auto ec = v.get_bool().get(out)) return json_error(c, ec);
  return {};
}

// The exact text of an object value (consumes it).
status read_object_raw(od::value& v, const ctx& c, const field_name& f, std::string& out,
                       bool* is_null = nullptr) {
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t == od::json_type::null && is_null != nullptr) {
    *is_null = true;
    return {};
  }
  if (t != od::json_type::object) return field_error(c, f, "must be an object");
  od::object obj;
  if (auto ec = v.get_object().get(obj)) return json_error(c, ec);
  std::string_view raw;
  if (auto ec = obj.raw_json().get(raw)) return json_error(c, ec);
  raw = trim_right(raw);
  out.assign(raw.data(), raw.size());
  return {};
}

// Iterates the fields of `obj` once, in document order, calling
// on_field(key, value) -> status. Unconsumed values are skipped by simdjson.
template <typename F>
status for_each_field(od::object& obj, const ctx& c, F&& on_field) {
  for (auto field_result : obj) {
    od::field field;
    if (auto ec = std::move(field_result).get(field)) return json_error(c, ec);
    std::string_view key;
    if (auto ec = field.unescaped_key().get(key)) return json_error(c, ec);
    od::value v = field.value();
    if (auto s = on_field(key, v); !s) return s;
  }
  return {};
}

status root_object(std::string_view json, std::size_t readable, const ctx& c, od::document& doc,
                   od::object& obj) {
  if (json.empty()) return json_error(c, simdjson::EMPTY);
  if (auto ec = start(json, readable, doc)) return json_error(c, ec);
  od::json_type t;
  if (auto ec = doc.type().get(t)) return json_error(c, ec);
  if (t != od::json_type::object) {
    std::string msg(c.what);
    msg += " must be a JSON object";
    return error::make(c.code, std::move(msg));
  }
  if (auto ec = doc.get_object().get(obj)) return json_error(c, ec);
  return {};
}

// After the root object was iterated: nothing but whitespace may follow.
status expect_end(od::document& doc, const ctx& c) {
  const char* loc = nullptr;
  if (doc.current_location().get(loc) == simdjson::SUCCESS) return json_error(c, simdjson::TRAILING_CONTENT);
  return {};
}

status missing(const ctx& c, const field_name& f) { return field_error(c, f, "is required"); }

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

status read_event_object(od::object& obj, const ctx& c, std::string_view prefix, std::size_t index,
                         event& e) {
  unsigned seen = 0;
  const auto f = [&](std::string_view name) { return field_name{prefix, index, name}; };
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> status {
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
    return {};
  });
  if (!s) return s;
  if (seen != k_ev_all) {
    if (!(seen & k_ev_event_id)) return missing(c, f("event_id"));
    if (!(seen & k_ev_aggregate_type)) return missing(c, f("aggregate_type"));
    if (!(seen & k_ev_aggregate_id)) return missing(c, f("aggregate_id"));
    if (!(seen & k_ev_version)) return missing(c, f("version"));
    if (!(seen & k_ev_event_type)) return missing(c, f("event_type"));
    return missing(c, f("payload"));
  }
  return {};
}

status read_events(od::value& v, const ctx& c, std::vector<event>& out) {
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t != od::json_type::array)
    return field_error(c, field_name{{}, field_name::npos, "events"}, "must be an array");
  od::array arr;
  if (auto ec = v.get_array().get(arr)) return json_error(c, ec);
  std::size_t i = 0;
  for (auto el_result : arr) {
    od::value el;
    if (auto ec = std::move(el_result).get(el)) return json_error(c, ec);
    od::json_type et;
    if (auto s = peek_type(el, c, et); !s) return s;
    if (et != od::json_type::object) {
      return field_error(c, field_name{{}, field_name::npos, "events[" + std::to_string(i) + "]"},
                         "must be an object");
    }
    od::object obj;
    if (auto ec = el.get_object().get(obj)) return json_error(c, ec);
    event& e = out.emplace_back();
    if (auto s = read_event_object(obj, c, "events", i, e); !s) return s;
    ++i;
  }
  return {};
}

constexpr ctx k_command_ctx{errc::invalid_command, "body"};

// payload: an object with a string `type`; keeps the object's exact text.
status read_payload(od::document& doc, od::value& v, command& cmd) {
  const ctx& c = k_command_ctx;
  const field_name pf{{}, field_name::npos, "payload"};
  od::json_type t;
  if (auto s = peek_type(v, c, t); !s) return s;
  if (t != od::json_type::object) return field_error(c, pf, "must be an object");
  const char* begin = v.raw_json_token().data();
  od::object obj;
  if (auto ec = v.get_object().get(obj)) return json_error(c, ec);
  bool has_type = false;
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& fv) -> status {
    if (key != "type") return {};
    has_type = true;
    return read_string(fv, c, field_name{"payload", field_name::npos, "type"}, cmd.payload_type);
  });
  if (!s) return s;
  if (!has_type) return missing(c, field_name{"payload", field_name::npos, "type"});
  if (cmd.payload_type.empty())
    return field_error(c, field_name{"payload", field_name::npos, "type"}, "must not be empty");
  // The object is consumed: the iterator stands on the token after its '}'.
  // A root object always closes after the payload, so there is such a token.
  const char* end = nullptr;
  if (auto ec = doc.current_location().get(end)) return json_error(c, ec);
  const std::string_view raw = trim_right(std::string_view(begin, static_cast<std::size_t>(end - begin)));
  cmd.payload_json.assign(raw.data(), raw.size());
  return {};
}

result<command_fields> decode_command_impl(std::string_view json, std::size_t readable) {
  const ctx& c = k_command_ctx;
  od::document doc;
  od::object obj;
  if (auto s = root_object(json, readable, c, doc, obj); !s) return std::move(s).err();
  command_fields out;
  command& cmd = out.cmd;
  bool has_type = false;
  bool has_payload = false;
  const auto f = [](std::string_view name) { return field_name{{}, field_name::npos, name}; };
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> status {
    if (key == "aggregate_type") {
      has_type = true;
      return read_string(v, c, f(key), cmd.aggregate_type);
    }
    if (key == "payload") {
      has_payload = true;
      return read_payload(doc, v, cmd);
    }
    if (key == "tenant_id") {
      bool is_null = false;
      auto r = read_string(v, c, f(key), cmd.tenant_id, &is_null);
      out.has_tenant_id = !is_null;
      return r;
    }
    if (key == "command_id") {
      bool is_null = false;
      auto r = read_string(v, c, f(key), cmd.command_id, &is_null);
      out.has_command_id = !is_null;
      return r;
    }
    if (key == "aggregate_id") {
      bool is_null = false;
      auto r = read_string(v, c, f(key), cmd.aggregate_id, &is_null);
      out.has_aggregate_id = !is_null;
      return r;
    }
    if (key == "metadata") {
      bool is_null = false;
      auto r = read_object_raw(v, c, f(key), cmd.metadata_json, &is_null);
      out.has_metadata = !is_null;
      return r;
    }
    return {};
  });
  if (!s) return std::move(s).err();
  if (auto e = expect_end(doc, c); !e) return std::move(e).err();

  if (!has_type) return missing(c, f("aggregate_type")).err();
  if (!has_payload) return missing(c, f("payload")).err();
  if (auto v = validate_aggregate_type(cmd.aggregate_type); !v) return std::move(v).err();
  if (out.has_tenant_id && !cmd.tenant_id.empty() && !is_valid_tenant_id(cmd.tenant_id)) {
    return error::make(errc::invalid_tenant, cmd.tenant_id == "_"
                                                 ? "field 'tenant_id' must not be '_' (reserved)"
                                                 : "field 'tenant_id' must match [A-Za-z0-9_-]{1,64}");
  }
  if (out.has_command_id) {
    if (auto v = validate_command_id(cmd.command_id); !v) return std::move(v).err();
  }
  if (out.has_aggregate_id) {
    if (auto v = validate_aggregate_id(cmd.aggregate_id); !v) return std::move(v).err();
  }
  return out;
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

result<command_fields> decode_command(std::string_view json) { return decode_command_impl(json, 0); }

result<command_fields> decode_command(std::string_view json, std::size_t readable) {
  return decode_command_impl(json, readable);
}

result<event> decode_event(std::string_view json) {
  const ctx c{errc::internal, "event"};
  od::document doc;
  od::object obj;
  if (auto s = root_object(json, 0, c, doc, obj); !s) return std::move(s).err();
  event e;
  if (auto s = read_event_object(obj, c, {}, field_name::npos, e); !s) return std::move(s).err();
  if (auto s = expect_end(doc, c); !s) return std::move(s).err();
  return e;
}

result<commit> decode_commit(std::string_view json) {
  const ctx c{errc::internal, "commit"};
  od::document doc;
  od::object obj;
  if (auto s = root_object(json, 0, c, doc, obj); !s) return std::move(s).err();
  commit out;
  unsigned seen = 0;
  const auto f = [](std::string_view name) { return field_name{{}, field_name::npos, name}; };
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> status {
    if (key == "tenant_id") return read_string(v, c, f(key), out.tenant_id);
    if (key == "aggregate_type") {
      seen |= 1;
      return read_string(v, c, f(key), out.aggregate_type);
    }
    if (key == "aggregate_id") {
      seen |= 2;
      return read_string(v, c, f(key), out.aggregate_id);
    }
    if (key == "command_id") return read_string(v, c, f(key), out.command_id);
    if (key == "first_version") {
      seen |= 4;
      return read_u64(v, c, f(key), out.first_version);
    }
    if (key == "events") {
      seen |= 8;
      return read_events(v, c, out.events);
    }
    return {};
  });
  if (!s) return std::move(s).err();
  if (auto e = expect_end(doc, c); !e) return std::move(e).err();
  if (!(seen & 1)) return missing(c, f("aggregate_type")).err();
  if (!(seen & 2)) return missing(c, f("aggregate_id")).err();
  if (!(seen & 4)) return missing(c, f("first_version")).err();
  if (!(seen & 8)) return missing(c, f("events")).err();
  return out;
}

result<command_result> decode_command_result(std::string_view json) {
  const ctx c{errc::internal, "command result"};
  od::document doc;
  od::object obj;
  if (auto s = root_object(json, 0, c, doc, obj); !s) return std::move(s).err();
  command_result out;
  std::string status_text;
  bool has_status = false;
  bool has_code = false;
  const auto f = [](std::string_view name) { return field_name{{}, field_name::npos, name}; };
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> status {
    if (key == "status") {
      has_status = true;
      return read_string(v, c, f(key), status_text);
    }
    if (key == "aggregate_id") return read_string(v, c, f(key), out.aggregate_id);
    if (key == "version") return read_u64(v, c, f(key), out.version);
    if (key == "duplicate") return read_bool(v, c, f(key), out.duplicate);
    if (key == "events") return read_events(v, c, out.events);
    if (key == "code") {
      has_code = true;
      return read_string(v, c, f(key), out.code);
    }
    if (key == "message") return read_string(v, c, f(key), out.message);
    if (key == "retryable") return read_bool(v, c, f(key), out.retryable);
    return {};
  });
  if (!s) return std::move(s).err();
  if (auto e = expect_end(doc, c); !e) return std::move(e).err();
  if (!has_status) return missing(c, f("status")).err();
  if (status_text == "accepted") {
    out.accepted = true;
  } else if (status_text == "rejected") {
    out.accepted = false;
    if (!has_code) return missing(c, f("code")).err();
  } else {
    return field_error(c, f("status"), "must be \"accepted\" or \"rejected\"");
  }
  return out;
}

result<snapshot> decode_snapshot(std::string_view json) {
  const ctx c{errc::internal, "snapshot"};
  od::document doc;
  od::object obj;
  if (auto s = root_object(json, 0, c, doc, obj); !s) return std::move(s).err();
  snapshot out;
  unsigned seen = 0;
  const auto f = [](std::string_view name) { return field_name{{}, field_name::npos, name}; };
  auto s = for_each_field(obj, c, [&](std::string_view key, od::value& v) -> status {
    if (key == "tenant_id") return read_string(v, c, f(key), out.tenant_id);
    if (key == "aggregate_type") {
      seen |= 1;
      return read_string(v, c, f(key), out.aggregate_type);
    }
    if (key == "aggregate_id") {
      seen |= 2;
      return read_string(v, c, f(key), out.aggregate_id);
    }
    if (key == "version") {
      seen |= 4;
      return read_u64(v, c, f(key), out.version);
    }
    if (key == "log_position") return read_u64(v, c, f(key), out.log_position);
    if (key == "state") {
      seen |= 8;
      return read_object_raw(v, c, f(key), out.state_json);
    }
    if (key == "created_at") return read_string(v, c, f(key), out.created_at);
    return {};
  });
  if (!s) return std::move(s).err();
  if (auto e = expect_end(doc, c); !e) return std::move(e).err();
  if (!(seen & 1)) return missing(c, f("aggregate_type")).err();
  if (!(seen & 2)) return missing(c, f("aggregate_id")).err();
  if (!(seen & 4)) return missing(c, f("version")).err();
  if (!(seen & 8)) return missing(c, f("state")).err();
  return out;
}

}  // namespace esflow::schemas
