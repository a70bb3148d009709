#include "runtime/lua_json.h"

#include <lua.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace esflow::runtime::detail {

const char k_array_mt_key = 0;

namespace {
constexpr int k_max_depth = 256;  // also stops cycles

// Short keys and values are mostly ASCII: skip the UTF-8 validator's dispatch for them.
bool is_ascii(const char* s, std::size_t len) noexcept {
  unsigned char bits = 0;
  for (std::size_t i = 0; i < len; ++i) bits |= static_cast<unsigned char>(s[i]);
  return bits < 0x80;
}
}  // namespace

// --- JSON -> Lua -------------------------------------------------------------
// Only trivially destructible locals below: a Lua error may longjmp through.

void push_json(lua_State* L, simdjson::dom::element element, int array_mt, const char** bad) {
  using simdjson::dom::element_type;
  luaL_checkstack(L, 4, "JSON nested too deeply");
  switch (element.type()) {
    case element_type::ARRAY: {
      simdjson::dom::array arr = element.get_array().value_unsafe();
      lua_createtable(L, static_cast<int>(arr.size()), 0);
      lua_Integer i = 1;
      for (simdjson::dom::element item : arr) {
        push_json(L, item, array_mt, bad);
        lua_rawseti(L, -2, i++);
      }
      lua_pushvalue(L, array_mt);
      lua_setmetatable(L, -2);
      return;
    }
    case element_type::OBJECT: {
      simdjson::dom::object obj = element.get_object().value_unsafe();
      lua_createtable(L, 0, static_cast<int>(obj.size()));
      for (simdjson::dom::key_value_pair field : obj) {
        lua_pushlstring(L, field.key.data(), field.key.size());
        push_json(L, field.value, array_mt, bad);
        lua_rawset(L, -3);  // a repeated key: the last one wins
      }
      return;
    }
    case element_type::INT64:
      lua_pushinteger(L, static_cast<lua_Integer>(element.get_int64().value_unsafe()));
      return;
    case element_type::UINT64:
      // Above INT64_MAX: a Lua integer cannot hold it and a float would lose digits.
      *bad = "integer out of the int64 range";
      lua_pushnil(L);
      return;
    case element_type::DOUBLE:
      lua_pushnumber(L, static_cast<lua_Number>(element.get_double().value_unsafe()));
      return;
    case element_type::STRING: {
      std::string_view s = element.get_string().value_unsafe();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case element_type::BOOL:
      lua_pushboolean(L, element.get_bool().value_unsafe() ? 1 : 0);
      return;
    case element_type::NULL_VALUE:
      lua_pushlightuserdata(L, nullptr);
      return;
  }
  lua_pushnil(L);
}

// --- Lua -> JSON -------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the pending run of bytes that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        out.append(esc, 6);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

bool json_writer::write(int idx, std::string& out) {
  _error.clear();
  _path.clear();
  _scratch.clear();
  int top = lua_gettop(_L);
  bool ok = value(lua_absindex(_L, idx), out, 0);
  lua_settop(_L, top);
  if (!ok) {
    std::string where = "$";
    for (auto it = _path.rbegin(); it != _path.rend(); ++it) where += *it;
    _error += " at ";
    _error += where;
  }
  return ok;
}

bool json_writer::fail(std::string msg) {
  _error = std::move(msg);
  return false;
}

void json_writer::prefix_path(std::string segment) { _path.push_back(std::move(segment)); }

bool json_writer::value(int idx, std::string& out, int depth) {
  switch (lua_type(_L, idx)) {
    case LUA_TBOOLEAN:
      out.append(lua_toboolean(_L, idx) ? "true" : "false");
      return true;
    case LUA_TNUMBER: {
      char buf[32];
      if (lua_isinteger(_L, idx)) {
        auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(lua_tointeger(_L, idx)));
        out.append(buf, r.ptr);
        return true;
      }
      double d = lua_tonumber(_L, idx);
      if (!std::isfinite(d))
        return fail(std::isnan(d) ? "cannot encode NaN as JSON" : "cannot encode infinity as JSON");
      auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest text that reads back exactly
      out.append(buf, r.ptr);
      if (std::find_if(buf, r.ptr, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) == r.ptr) {
        out.append(".0");  // keep a float a float: 2.0 must not come back as the integer 2
      }
      return true;
    }
    case LUA_TSTRING: {
      std::size_t len = 0;
      const char* s = lua_tolstring(_L, idx, &len);
      if (!is_ascii(s, len) && !simdjson::validate_utf8(s, len)) {
        return fail("cannot encode a string that is not valid UTF-8 as JSON");
      }
      append_json_string(out, std::string_view(s, len));
      return true;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(_L, idx) == nullptr) {
        out.append("null");
        return true;
      }
      return fail("cannot encode a light userdata as JSON");
    case LUA_TTABLE:
      return table(idx, out, depth);
    case LUA_TNIL:
      return fail("cannot encode nil as JSON (use null)");
    default:
      return fail(std::string("cannot encode a ") + lua_typename(_L, lua_type(_L, idx)) + " as JSON");
  }
}

bool json_writer::table(int idx, std::string& out, int depth) {
  if (depth >= k_max_depth) return fail("table nested too deeply (or cyclic) for JSON");
  bool marked = false;
  if (lua_getmetatable(_L, idx)) {
    marked = lua_rawequal(_L, -1, _array_mt);
    lua_pop(_L, 1);
  }
  if (!lua_checkstack(_L, 20)) return fail("Lua stack exhausted while encoding JSON");

  if (marked) {  // an array: elements 1..#t
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(_L, idx));
    out.push_back('[');
    for (lua_Integer i = 1; i <= n; ++i) {
      if (i > 1) out.push_back(',');
      lua_rawgeti(_L, idx, i);
      bool ok = value(lua_gettop(_L), out, depth + 1);
      lua_pop(_L, 1);
      if (!ok) {
        prefix_path("[" + std::to_string(i) + "]");
        return false;
      }
    }
    out.push_back(']');
    return true;
  }

  // Unmarked: collect the entries (values parked on the stack), then decide
  // between object (all keys strings) and array (keys exactly 1..n).
  int base = lua_gettop(_L);
  std::size_t first = _scratch.size();
  std::size_t strings = 0;
  lua_pushnil(_L);
  while (lua_next(_L, idx) != 0) {  // [.., key, value]
    entry e{{}, 0, 0};
    int kt = lua_type(_L, -2);
    if (kt == LUA_TSTRING) {
      std::size_t len = 0;
      const char* k = lua_tolstring(_L, -2, &len);  // a string key: no conversion in place
      e.key = std::string_view(k, len);
      ++strings;
    } else if (kt == LUA_TNUMBER && lua_isinteger(_L, -2)) {
      e.index = static_cast<long long>(lua_tointeger(_L, -2));
    } else {
      std::string what = lua_typename(_L, kt);
      if (kt == LUA_TNUMBER) what = "float";
      lua_settop(_L, base);
      _scratch.resize(first);
      return fail("cannot encode a table with a " + what + " key as JSON");
    }
    lua_insert(_L, -2);  // [.., value, key]: the value stays parked below
    e.slot = lua_gettop(_L) - 1;
    _scratch.push_back(e);
    // Room for the next key/value pair plus a margin, asked for in batches.
    if ((_scratch.size() - first) % 16 == 0 && !lua_checkstack(_L, 20)) {
      lua_settop(_L, base);
      _scratch.resize(first);
      return fail("table too large to encode as JSON");
    }
  }
  std::size_t count = _scratch.size() - first;
  auto begin = _scratch.begin() + static_cast<std::ptrdiff_t>(first);
  bool ok = true;
  if (count == 0) {
    out.append("{}");  // an empty unmarked table is an object; use array() for []
  } else if (strings == count) {
    std::sort(begin, _scratch.end(), [](const entry& a, const entry& b) { return a.key < b.key; });
    out.push_back('{');
    for (std::size_t i = first; ok && i < first + count; ++i) {
      if (i > first) out.push_back(',');
      const entry& e = _scratch[i];
      append_json_string(out, e.key);
      out.push_back(':');
      if (!value(e.slot, out, depth + 1)) {
        prefix_path("." + std::string(_scratch[i].key));
        ok = false;
      }
    }
    if (ok) out.push_back('}');
  } else if (strings == 0) {
    std::sort(begin, _scratch.end(), [](const entry& a, const entry& b) { return a.index < b.index; });
    for (std::size_t i = 0; i < count; ++i) {
      if (_scratch[first + i].index != static_cast<long long>(i) + 1) {
        lua_settop(_L, base);
        _scratch.resize(first);
        return fail("cannot encode a table with integer keys that are not 1..n as JSON");
      }
    }
    out.push_back('[');
    for (std::size_t i = first; ok && i < first + count; ++i) {
      if (i > first) out.push_back(',');
      if (!value(_scratch[i].slot, out, depth + 1)) {
        prefix_path("[" + std::to_string(_scratch[i].index) + "]");
        ok = false;
      }
    }
    if (ok) out.push_back(']');
  } else {
    ok = fail("cannot encode a table that mixes string and integer keys as JSON");
  }
  lua_settop(_L, base);
  _scratch.resize(first);
  return ok;
}

}  // namespace esflow::runtime::detail
