#include "runtime/gas.h"

#include <algorithm>

namespace esflow::runtime::detail {
namespace {

void arm_next(lua_State* L, gas_meter& g) {
  auto next = static_cast<int>(std::min<std::uint64_t>(k_gas_chunk, std::max<std::uint64_t>(g.left(), 1)));
  if (next != g.armed) {
    g.armed = next;
    lua_sethook(L, g.hook, LUA_MASKCOUNT, next);
  }
}

}  // namespace

void gas_arm(lua_State* L, gas_meter& g) {
  g.used = 0;
  g.exhausted = false;
  g.exhausted_in = nullptr;
  g.armed = 0;
  arm_next(L, g);
}

void gas_disarm(lua_State* L, gas_meter& g) {
  lua_sethook(L, nullptr, 0, 0);
  g.armed = 0;
  g.exhausted = false;
  g.exhausted_in = nullptr;
}

void gas_on_hook(lua_State* L, gas_meter& g) {
  if (g.exhausted) {
    lua_pushliteral(L, "ran out of gas");
    lua_error(L);
  }
  g.used += static_cast<std::uint64_t>(g.armed);
  if (g.used >= g.budget) gas_exhaust(L, g, nullptr);
  arm_next(L, g);
}

void gas_exhaust(lua_State* L, gas_meter& g, const char* where) {
  if (!g.exhausted) g.exhausted_in = where;  // the first cause is the one reported
  g.exhausted = true;
  g.armed = 1;
  lua_sethook(L, g.hook, LUA_MASKCOUNT, 1);
  if (where != nullptr) {
    lua_pushfstring(L, "ran out of gas in %s", where);
  } else {
    lua_pushliteral(L, "ran out of gas");
  }
  lua_error(L);
  __builtin_unreachable();  // lua_error does not return
}

}  // namespace esflow::runtime::detail
