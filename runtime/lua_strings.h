#pragma once
// The sandbox's string.find / match / gmatch / gsub (on runtime/lua_pattern.h)
// and string.rep / format: the same Lua 5.4 behaviour, but every step and
// every byte produced is charged to the call's gas (runtime/gas.h), and a
// result larger than the VM's memory cap is refused up front. Lua's own
// versions can run for minutes inside one C call (a backtracking pattern, or
// string.rep("", 1e15)) where the count hook never fires.
#include "runtime/gas.h"

#include <lua.hpp>

namespace esflow::runtime::detail {

// Bytes produced per step of gas: copying is far cheaper than a VM instruction.
inline constexpr std::uint64_t k_bytes_per_gas = 32;

// Replaces those six functions in the string library table at `index`.
void install_bounded_strings(lua_State* L, int index, gas_meter* gas);

}  // namespace esflow::runtime::detail
