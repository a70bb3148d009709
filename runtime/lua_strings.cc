#include "runtime/lua_strings.h"

#include "runtime/lua_pattern.h"

#include <algorithm>
#include <cstring>

namespace esflow::runtime::detail {
namespace {

gas_meter& meter_of(lua_State* L) { return *static_cast<gas_meter*>(lua_touserdata(L, lua_upvalueindex(1))); }

void charge_bytes(lua_State* L, gas_meter& g, std::uint64_t bytes, const char* fn) {
  gas_charge(L, g, 1 + bytes / k_bytes_per_gas, fn);
}

// A string position argument as a 0-based offset in [0, len] (Lua's rule:
// negative counts from the end, 0 and below -len mean the start).
std::size_t start_offset(lua_Integer pos, std::size_t len) {
  if (pos > 0) return static_cast<std::size_t>(pos) - 1;
  if (pos == 0) return 0;
  if (pos < -static_cast<lua_Integer>(len)) return 0;
  return len - static_cast<std::size_t>(-pos);
}

// Plain substring search, charging every candidate position.
const char* plain_find(lua_State* L, gas_meter& g, const char* s, std::size_t ls, const char* p,
                       std::size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  const char* end = s + (ls - lp) + 1;  // one past the last possible start
  const char* at = s;
  while (at < end) {
    const void* hit = std::memchr(at, *p, static_cast<std::size_t>(end - at));
    charge_bytes(L, g,
                 static_cast<std::uint64_t>((hit != nullptr ? static_cast<const char*>(hit) : end) - at),
                 "string.find");
    if (hit == nullptr) return nullptr;
    at = static_cast<const char*>(hit);
    charge_bytes(L, g, lp, "string.find");
    if (std::memcmp(at + 1, p + 1, lp - 1) == 0) return at;
    ++at;
  }
  return nullptr;
}

int find_or_match(lua_State* L, bool find) {
  const char* fn = find ? "string.find" : "string.match";
  gas_meter& g = meter_of(L);
  std::size_t ls = 0;
  std::size_t lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !pattern_has_specials(p, lp))) {
    const char* at = plain_find(L, g, s + init, ls - init, p, lp);
    if (at == nullptr) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, static_cast<lua_Integer>(at - s) + 1);
    lua_pushinteger(L, static_cast<lua_Integer>(at - s + static_cast<std::ptrdiff_t>(lp)));
    return 2;
  }
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    ++p;
    --lp;
  }
  pattern_state ms;
  pattern_init(ms, L, &g, fn, s, ls, p, lp);
  const char* at = s + init;
  do {
    pattern_reset(ms);
    const char* e = pattern_match(ms, at, p);
    if (e != nullptr) {
      if (!find) return pattern_push_captures(ms, at, e);
      lua_pushinteger(L, static_cast<lua_Integer>(at - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>(e - s));
      return pattern_push_captures(ms, nullptr, nullptr) + 2;
    }
  } while (at++ < ms.src_end && !anchor);
  luaL_pushfail(L);
  return 1;
}

int bounded_find(lua_State* L) { return find_or_match(L, true); }
int bounded_match(lua_State* L) { return find_or_match(L, false); }

// gmatch's iterator state (a full userdata, upvalue 4 of the iterator).
struct gmatch_state {
  std::size_t next;         // offset where the next search starts
  std::ptrdiff_t last_end;  // offset where the previous match ended, or -1
};

// Upvalues: 1 meter, 2 subject, 3 pattern, 4 gmatch_state.
int gmatch_step(lua_State* L) {
  gas_meter& g = meter_of(L);
  std::size_t ls = 0;
  std::size_t lp = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(2), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(3), &lp);
  auto* st = static_cast<gmatch_state*>(lua_touserdata(L, lua_upvalueindex(4)));
  if (st->next > ls) return 0;  // done
  pattern_state ms;
  pattern_init(ms, L, &g, "string.gmatch", s, ls, p, lp);
  for (const char* at = s + st->next; at <= ms.src_end; ++at) {
    pattern_reset(ms);
    const char* e = pattern_match(ms, at, p);
    if (e != nullptr && e - s != st->last_end) {
      st->next = static_cast<std::size_t>(e - s);
      st->last_end = e - s;
      return pattern_push_captures(ms, at, e);
    }
  }
  st->next = ls + 1;  // exhausted: stays so
  return 0;
}

int bounded_gmatch(lua_State* L) {
  std::size_t ls = 0;
  luaL_checklstring(L, 1, &ls);
  luaL_checkstring(L, 2);
  std::size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  lua_settop(L, 2);
  auto* st = static_cast<gmatch_state*>(lua_newuserdatauv(L, sizeof(gmatch_state), 0));
  st->next = init > ls ? ls + 1 : init;
  st->last_end = -1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);  // meter, s, p, state
  lua_pushcclosure(L, gmatch_step, 4);
  return 1;
}

// Appends the replacement of the match [s, e) to b; false when the match is kept as is.
bool add_replacement(pattern_state& ms, luaL_Buffer& b, const char* s, const char* e, int repl_type) {
  lua_State* L = ms.L;
  switch (repl_type) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = pattern_push_captures(ms, s, e);
      lua_call(L, n, 1);
      break;
    }
    case LUA_TTABLE:
      pattern_push_capture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
    default: {  // a string (or number): "%0".."%9" and "%%" expand
      std::size_t lr = 0;
      const char* r = lua_tolstring(L, 3, &lr);
      const char* end = r + lr;
      while (r < end) {
        const char* esc = static_cast<const char*>(std::memchr(r, '%', static_cast<std::size_t>(end - r)));
        if (esc == nullptr) esc = end;
        charge_bytes(L, *ms.gas, static_cast<std::uint64_t>(esc - r), "string.gsub");
        luaL_addlstring(&b, r, static_cast<std::size_t>(esc - r));
        if (esc == end) break;
        r = esc + 1;
        if (r < end && *r == '%') {
          luaL_addchar(&b, '%');
        } else if (r < end && *r >= '0' && *r <= '9') {
          if (*r == '0') {
            charge_bytes(L, *ms.gas, static_cast<std::uint64_t>(e - s), "string.gsub");
            luaL_addlstring(&b, s, static_cast<std::size_t>(e - s));
          } else {
            pattern_push_capture(ms, *r - '1', s, e);
            luaL_tolstring(L, -1, nullptr);
            lua_remove(L, -2);
            charge_bytes(L, *ms.gas, lua_rawlen(L, -1), "string.gsub");
            luaL_addvalue(&b);
          }
        } else {
          luaL_error(L, "string.gsub: invalid use of '%%' in replacement string");
        }
        ++r;
      }
      return true;
    }
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the match
    lua_pop(L, 1);
    luaL_addlstring(&b, s, static_cast<std::size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) {
    return luaL_error(L, "string.gsub: invalid replacement value (a %s)", luaL_typename(L, -1)) != 0;
  }
  charge_bytes(L, *ms.gas, lua_rawlen(L, -1), "string.gsub");
  luaL_addvalue(&b);
  return true;
}

int bounded_gsub(lua_State* L) {
  gas_meter& g = meter_of(L);
  std::size_t ls = 0;
  std::size_t lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  int repl_type = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  luaL_argexpected(L,
                   repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING || repl_type == LUA_TFUNCTION ||
                       repl_type == LUA_TTABLE,
                   3, "string/function/table");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    ++p;
    --lp;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  pattern_state ms;
  pattern_init(ms, L, &g, "string.gsub", s, ls, p, lp);
  const char* at = s;
  const char* last = nullptr;
  lua_Integer n = 0;
  bool changed = false;
  while (n < max_n) {
    pattern_reset(ms);
    const char* e = pattern_match(ms, at, p);
    if (e != nullptr && e != last) {
      ++n;
      changed = add_replacement(ms, b, at, e, repl_type) || changed;
      at = last = e;
    } else if (at < ms.src_end) {
      luaL_addchar(&b, *at++);
    } else {
      break;
    }
    if (anchor) break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    charge_bytes(L, g, static_cast<std::uint64_t>(ms.src_end - at), "string.gsub");
    luaL_addlstring(&b, at, static_cast<std::size_t>(ms.src_end - at));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

// bytes saturates at LUA_MAXINTEGER (a count that overflowed).
[[noreturn]] void too_large(lua_State* L, const char* fn, std::uint64_t bytes, const gas_meter& g) {
  auto shown = static_cast<lua_Integer>(std::min<std::uint64_t>(bytes, LUA_MAXINTEGER));
  luaL_error(L, "%s: a result of %I bytes exceeds the VM's memory cap of %I bytes", fn, shown,
             static_cast<lua_Integer>(g.memory_limit));
  __builtin_unreachable();
}

int bounded_rep(lua_State* L) {
  gas_meter& g = meter_of(L);
  std::size_t l = 0;
  std::size_t lsep = 0;
  const char* s = luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char* sep = luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {  // nothing to build (Lua would loop n times for "")
    lua_pushliteral(L, "");
    return 1;
  }
  // n * l + (n - 1) * lsep, refused before it can overflow.
  auto count = static_cast<std::uint64_t>(n);
  std::uint64_t unit = static_cast<std::uint64_t>(l) + lsep;
  if (count > (g.memory_limit + lsep) / unit) {
    too_large(L, "string.rep", count > UINT64_MAX / unit ? UINT64_MAX : count * unit - lsep, g);
  }
  std::uint64_t total = count * unit - lsep;
  charge_bytes(L, g, total, "string.rep");
  luaL_Buffer b;
  char* out = luaL_buffinitsize(L, &b, static_cast<std::size_t>(total));
  for (std::uint64_t i = 0; i < count; ++i) {
    std::memcpy(out, s, l);
    out += l;
    if (lsep > 0 && i + 1 < count) {
      std::memcpy(out, sep, lsep);
      out += lsep;
    }
  }
  luaL_pushresultsize(&b, static_cast<std::size_t>(total));
  return 1;
}

// Upvalues: 1 meter, 2 Lua's string.format. Its work is linear in its string
// arguments and its result (a width or precision has at most 2 digits), and
// the result grows through the VM's metered allocator (beyond the cap: "out
// of memory"), so a charge for both bounds it.
int bounded_format(lua_State* L) {
  gas_meter& g = meter_of(L);
  int top = lua_gettop(L);
  std::uint64_t input = 0;
  for (int i = 1; i <= top; ++i) {
    if (lua_type(L, i) == LUA_TSTRING) input += lua_rawlen(L, i);
  }
  charge_bytes(L, g, input, "string.format");
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_call(L, top, 1);
  std::size_t len = lua_rawlen(L, -1);
  if (len > g.memory_limit) too_large(L, "string.format", len, g);
  charge_bytes(L, g, len, "string.format");
  return 1;
}

}  // namespace

void install_bounded_strings(lua_State* L, int index, gas_meter* gas) {
  index = lua_absindex(L, index);
  static constexpr luaL_Reg fns[] = {{"find", bounded_find},     {"match", bounded_match},
                                     {"gmatch", bounded_gmatch}, {"gsub", bounded_gsub},
                                     {"rep", bounded_rep},       {nullptr, nullptr}};
  for (const luaL_Reg* r = fns; r->name != nullptr; ++r) {
    lua_pushlightuserdata(L, gas);
    lua_pushcclosure(L, r->func, 1);
    lua_setfield(L, index, r->name);
  }
  lua_pushlightuserdata(L, gas);
  lua_getfield(L, index, "format");
  lua_pushcclosure(L, bounded_format, 2);
  lua_setfield(L, index, "format");
}

}  // namespace esflow::runtime::detail
