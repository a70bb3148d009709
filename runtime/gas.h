#pragma once
// The per-call instruction budget ("gas") of a sandbox, shared by the Lua VM
// and the C string functions that do unbounded work in one call
// (runtime/lua_strings.h): both charge the same counter, so a backtracking
// pattern ends like an endless loop, as program_error "ran out of gas ...".
//
// The VM is counted by a count hook that fires every k_gas_chunk
// instructions (fewer near the end of the budget) and adds the chunk; C
// functions add their own steps directly. A charge from C is seen by the VM
// at its next hook, at most k_gas_chunk instructions later.
//
// NOTE: not thread-safe; one per sandbox (one Lua state).
#include <lua.hpp>

#include <cstddef>
#include <cstdint>

namespace esflow::runtime::detail {

inline constexpr int k_gas_chunk = 1024;

struct gas_meter {
  std::uint64_t budget = 0;  // steps one call may take
  std::uint64_t used = 0;
  int armed = 0;                       // count the hook fires after
  lua_Hook hook = nullptr;             // the sandbox's count hook (calls gas_on_hook)
  bool exhausted = false;              // sticky until the next gas_arm
  const char* exhausted_in = nullptr;  // static text: the C function, nullptr for the VM
  std::size_t memory_limit = 0;        // the VM's cap: no single result may exceed it

  std::uint64_t left() const noexcept { return used >= budget ? 0 : budget - used; }
};

// Starts a call: nothing used, the hook armed.
void gas_arm(lua_State* L, gas_meter& g);
// Ends a call: the hook removed, the meter cleared.
void gas_disarm(lua_State* L, gas_meter& g);
// From the count hook: adds the chunk just run; raises once the budget is spent.
void gas_on_hook(lua_State* L, gas_meter& g);
// Marks the budget spent, makes every further instruction fail (so a pcall in
// the program cannot swallow it) and raises "ran out of gas in <where>".
[[noreturn]] void gas_exhaust(lua_State* L, gas_meter& g, const char* where);

// From a C function: charges n steps; raises when the budget is spent.
inline void gas_charge(lua_State* L, gas_meter& g, std::uint64_t n, const char* where) {
  g.used += n;
  if (g.used >= g.budget) gas_exhaust(L, g, where);
}

}  // namespace esflow::runtime::detail
