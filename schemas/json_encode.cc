#include "schemas/json_encode.h"

#include <array>
#include <charconv>
#include <cstring>

namespace esflow::schemas {
namespace {

// 0: copy as is; 1: needs an escape; 2: non-ASCII (validate UTF-8).
constexpr std::array<std::uint8_t, 256> make_escape_table() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c) t[c] = 2;
  return t;
}
constexpr auto k_escape = make_escape_table();
constexpr char k_hex[] = "0123456789abcdef";
constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

inline bool is_cont(unsigned char c) noexcept { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i] (s[i] >= 0x80), or 0.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto at = [&](std::size_t k) -> unsigned char {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
  };
  const unsigned char c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return is_cont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char c1 = at(1);
    if (c == 0xE0 && (c1 < 0xA0 || c1 > 0xBF)) return 0;  // overlong
    if (c == 0xED && (c1 < 0x80 || c1 > 0x9F)) return 0;  // surrogates
    if (!is_cont(c1) || !is_cont(at(2))) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char c1 = at(1);
    if (c == 0xF0 && (c1 < 0x90 || c1 > 0xBF)) return 0;  // overlong
    if (c == 0xF4 && (c1 < 0x80 || c1 > 0x8F)) return 0;  // > U+10FFFF
    if (!is_cont(c1) || !is_cont(at(2)) || !is_cont(at(3))) return 0;
    return 4;
  }
  return 0;
}

template <typename T>
void append_number(std::string& out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 24 bytes always fit a 64-bit integer
  out.append(buf, static_cast<std::size_t>(end - buf));
}

inline std::string_view raw_or_empty_object(std::string_view json) { return json.empty() ? "{}" : json; }

void write_event(json_writer& w, const event& e) {
  w.begin_object();
  w.key("tenant_id").value(e.tenant_id);
  w.key("event_id").value(e.event_id);
  w.key("aggregate_type").value(e.aggregate_type);
  w.key("aggregate_id").value(e.aggregate_id);
  w.key("version").value(std::uint64_t{e.version});
  w.key("event_type").value(e.event_type);
  w.key("payload").raw(raw_or_empty_object(e.payload_json));
  w.key("command_id").value(e.command_id);
  w.key("correlation_id").value(e.correlation_id);
  w.key("trace_id").value(e.trace_id);
  w.key("timestamp").value(e.timestamp);
  w.end_object();
}

void write_events(json_writer& w, const std::vector<event>& events) {
  w.begin_array();
  for (const auto& e : events) write_event(w, e);
  w.end_array();
}

}  // namespace

namespace {
// Index of the first byte that is not copied verbatim, or s.size().
inline std::size_t plain_prefix(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t n = s.size();
  // Eight bytes at a time: stop at a word holding a byte < 0x20, '"', '\\' or >= 0x80.
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  while (i + 8 <= n) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const std::uint64_t ctrl = (w - ones * 0x20) & ~w;  // high bit set where byte < 0x20 (or >= 0x80)
    const std::uint64_t q = w ^ (ones * '"');
    const std::uint64_t bs = w ^ (ones * '\\');
    const std::uint64_t quote = (q - ones) & ~q;
    const std::uint64_t backslash = (bs - ones) & ~bs;
    if (((ctrl | quote | backslash | w) & highs) != 0) break;
    i += 8;
  }
  while (i < n && k_escape[static_cast<unsigned char>(s[i])] == 0) ++i;
  return i;
}
}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  std::size_t i = plain_prefix(s);
  const std::size_t n = s.size();
  if (i == n) {  // the common case: nothing to escape
    const std::size_t old = out.size();
    out.resize(old + n + 2);
    char* p = out.data() + old;
    p[0] = '"';
    std::memcpy(p + 1, s.data(), n);
    p[n + 1] = '"';
    return;
  }
  out.reserve(out.size() + n + 8);
  out.push_back('"');
  out.append(s.data(), i);
  std::size_t run_start = i;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::uint8_t kind = k_escape[c];
    if (kind == 0) {
      ++i;
      continue;
    }
    if (kind == 2) {
      const std::size_t len = utf8_sequence_length(s, i);
      if (len != 0) {
        i += len;
        continue;
      }
      out.append(s.data() + run_start, i - run_start);
      out.append(k_replacement);
      run_start = ++i;
      continue;
    }
    out.append(s.data() + run_start, i - run_start);
    switch (c) {
      case '"':
        out.append("\\\"", 2);
        break;
      case '\\':
        out.append("\\\\", 2);
        break;
      case '\b':
        out.append("\\b", 2);
        break;
      case '\f':
        out.append("\\f", 2);
        break;
      case '\n':
        out.append("\\n", 2);
        break;
      case '\r':
        out.append("\\r", 2);
        break;
      case '\t':
        out.append("\\t", 2);
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', k_hex[c >> 4], k_hex[c & 0x0f]};
        out.append(esc, 6);
      }
    }
    run_start = ++i;
  }
  out.append(s.data() + run_start, n - run_start);
  out.push_back('"');
}

// ---- json_writer -------------------------------------------------------------------

void json_writer::before_value() {
  if (_after_key) {
    _after_key = false;
    return;
  }
  if (_depth > 0) {
    const std::uint64_t bit = std::uint64_t{1} << ((_depth - 1) & 63);
    if (_has_elements & bit) _out.push_back(',');
    _has_elements |= bit;
  }
}

json_writer& json_writer::begin_object() {
  before_value();
  _out.push_back('{');
  ++_depth;
  _has_elements &= ~(std::uint64_t{1} << ((_depth - 1) & 63));
  return *this;
}

json_writer& json_writer::end_object() {
  _out.push_back('}');
  --_depth;
  return *this;
}

json_writer& json_writer::begin_array() {
  before_value();
  _out.push_back('[');
  ++_depth;
  _has_elements &= ~(std::uint64_t{1} << ((_depth - 1) & 63));
  return *this;
}

json_writer& json_writer::end_array() {
  _out.push_back(']');
  --_depth;
  return *this;
}

json_writer& json_writer::key(std::string_view name) {
  before_value();
  if (plain_prefix(name) == name.size()) {
    const std::size_t old = _out.size();
    _out.resize(old + name.size() + 3);
    char* p = _out.data() + old;
    p[0] = '"';
    std::memcpy(p + 1, name.data(), name.size());
    p[name.size() + 1] = '"';
    p[name.size() + 2] = ':';
  } else {
    append_json_string(_out, name);
    _out.push_back(':');
  }
  _after_key = true;
  return *this;
}

json_writer& json_writer::value(std::string_view s) {
  before_value();
  append_json_string(_out, s);
  return *this;
}

json_writer& json_writer::value(std::uint64_t v) {
  before_value();
  append_number(_out, v);
  return *this;
}

json_writer& json_writer::value(std::int64_t v) {
  before_value();
  append_number(_out, v);
  return *this;
}

json_writer& json_writer::value(bool v) {
  before_value();
  _out.append(v ? "true" : "false");
  return *this;
}

json_writer& json_writer::null() {
  before_value();
  _out.append("null");
  return *this;
}

json_writer& json_writer::raw(std::string_view json) {
  before_value();
  _out.append(json);
  return *this;
}

// ---- envelopes ---------------------------------------------------------------------

void append_command(std::string& out, const command& c) {
  json_writer w(out);
  w.begin_object();
  w.key("tenant_id").value(c.tenant_id);
  if (!c.command_id.empty()) w.key("command_id").value(c.command_id);
  w.key("aggregate_type").value(c.aggregate_type);
  if (!c.aggregate_id.empty()) w.key("aggregate_id").value(c.aggregate_id);
  w.key("payload").raw(raw_or_empty_object(c.payload_json));
  w.key("metadata").raw(raw_or_empty_object(c.metadata_json));
  w.end_object();
}

void append_event(std::string& out, const event& e) {
  json_writer w(out);
  write_event(w, e);
}

void append_commit(std::string& out, const commit& c) {
  json_writer w(out);
  w.begin_object();
  w.key("tenant_id").value(c.tenant_id);
  w.key("aggregate_type").value(c.aggregate_type);
  w.key("aggregate_id").value(c.aggregate_id);
  w.key("command_id").value(c.command_id);
  w.key("first_version").value(std::uint64_t{c.first_version});
  w.key("events");
  write_events(w, c.events);
  w.end_object();
}

void append_command_result(std::string& out, const command_result& r) {
  json_writer w(out);
  w.begin_object();
  if (r.accepted) {
    w.key("status").value("accepted");
    w.key("aggregate_id").value(r.aggregate_id);
    w.key("version").value(std::uint64_t{r.version});
    w.key("position").value(std::uint64_t{r.position});
    w.key("duplicate").value(r.duplicate);
    w.key("events");
    write_events(w, r.events);
  } else {
    w.key("status").value("rejected");
    w.key("code").value(r.code);
    w.key("message").value(r.message);
    w.key("retryable").value(r.retryable);
    if (!r.node.empty()) w.key("node").value(r.node);
  }
  w.end_object();
}

void append_snapshot(std::string& out, const snapshot& s) {
  json_writer w(out);
  w.begin_object();
  w.key("tenant_id").value(s.tenant_id);
  w.key("aggregate_type").value(s.aggregate_type);
  w.key("aggregate_id").value(s.aggregate_id);
  w.key("version").value(std::uint64_t{s.version});
  w.key("log_position").value(std::uint64_t{s.log_position});
  w.key("state").raw(raw_or_empty_object(s.state_json));
  w.key("created_at").value(s.created_at);
  w.end_object();
}

namespace {
template <typename T, void (*append)(std::string&, const T&)>
std::string encode_with(const T& v, std::size_t hint) {
  std::string out;
  out.reserve(hint);
  append(out, v);
  return out;
}
}  // namespace

std::string encode_command(const command& c) {
  return encode_with<command, append_command>(c, 96 + c.payload_json.size() + c.metadata_json.size());
}
std::string encode_event(const event& e) {
  return encode_with<event, append_event>(e, 320 + e.payload_json.size());
}
std::string encode_commit(const commit& c) {
  std::size_t hint = 160;
  for (const auto& e : c.events) hint += 320 + e.payload_json.size();
  return encode_with<commit, append_commit>(c, hint);
}
std::string encode_command_result(const command_result& r) {
  std::size_t hint = 96 + r.message.size();
  for (const auto& e : r.events) hint += 320 + e.payload_json.size();
  return encode_with<command_result, append_command_result>(r, hint);
}
std::string encode_snapshot(const snapshot& s) {
  return encode_with<snapshot, append_snapshot>(s, 200 + s.state_json.size());
}

command_result make_rejection(const error& e) {
  command_result r;
  r.accepted = false;
  r.code = e.code_text.empty() ? std::string(to_string(e.code)) : e.code_text;
  r.message = e.message.empty() ? r.code : e.message;
  r.retryable = esflow::retryable(e.code);
  r.node = e.node;
  return r;
}

}  // namespace esflow::schemas
