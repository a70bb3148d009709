#pragma once
// A Lua 5.4 pattern matcher (the semantics of the reference manual, section
// 6.4.1 "Patterns") that charges every step to the call's gas
// (runtime/gas.h), so a backtracking pattern ends as "ran out of gas in
// string.find" instead of running for minutes inside one C call.
//
// NOTE: runs inside Lua C functions and raises Lua errors (longjmp): every
// frame here holds only trivially destructible values.
#include "runtime/gas.h"

#include <lua.hpp>

#include <cstddef>

namespace esflow::runtime::detail {

inline constexpr int k_max_captures = 32;  // LUA_MAXCAPTURES of the reference implementation
inline constexpr int k_max_match_depth = 200;

struct pattern_capture {
  const char* init;
  std::ptrdiff_t len;  // >= 0, or k_cap_open / k_cap_position
};
inline constexpr std::ptrdiff_t k_cap_open = -1;
inline constexpr std::ptrdiff_t k_cap_position = -2;

struct pattern_state {
  const char* src_init;
  const char* src_end;
  const char* pat_end;
  lua_State* L;
  gas_meter* gas;
  const char* fn;  // "string.find", ...: named in gas and pattern errors
  int depth;
  int level;  // captures opened so far
  pattern_capture capture[k_max_captures];
};

void pattern_init(pattern_state& ms, lua_State* L, gas_meter* gas, const char* fn, const char* s,
                  std::size_t ls, const char* p, std::size_t lp);
// Before each match attempt.
inline void pattern_reset(pattern_state& ms) {
  ms.level = 0;
  ms.depth = k_max_match_depth;
}
// Matches pattern p (no leading '^': the caller handles anchors) at s; the end
// of the match or nullptr.
const char* pattern_match(pattern_state& ms, const char* s, const char* p);
// Pushes capture i of the match [s, e) (i == 0 without captures: the whole match).
void pattern_push_capture(pattern_state& ms, int i, const char* s, const char* e);
// Pushes every capture (or the whole match when there are none and s is not
// nullptr); returns how many.
int pattern_push_captures(pattern_state& ms, const char* s, const char* e);
// True when p holds a pattern special character (else find may search plainly).
bool pattern_has_specials(const char* p, std::size_t lp);

}  // namespace esflow::runtime::detail
