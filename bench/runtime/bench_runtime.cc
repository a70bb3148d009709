// bench_runtime: account.lua decide/apply through the sandbox versus the raw
// Lua C API ceiling. Items/s = calls/s.
//   raw_decide      : lua_pcall of decide with the state and the command already Lua tables
//   sandbox_decide  : sandbox::decide_into(state_handle, command JSON) -> events JSON (the real path)
//   sandbox_apply   : sandbox::apply(state_handle, event JSON)
#include "runtime/program.h"
#include "runtime/sandbox.h"

#include <benchmark/benchmark.h>
#include <lua.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using namespace esflow::runtime;

const std::string k_path = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/account.lua";
constexpr const char* k_deposit = R"({"type":"deposit","amount":50})";
constexpr const char* k_deposited = R"({"type":"deposited","amount":50})";

program_ptr account() {
  static program_ptr p = [] {
    auto loaded = load_program(k_path, "Account");
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.err().to_string().c_str());
      std::abort();
    }
    return *loaded;
  }();
  return p;
}

int raw_reject(lua_State* L) { return luaL_error(L, "%s", luaL_checkstring(L, 1)); }

// The ceiling: plain lua_State with the standard libraries, no hook, no copies.
struct raw_vm {
  lua_State* L = luaL_newstate();
  int decide = LUA_NOREF;
  int apply = LUA_NOREF;
  int state = LUA_NOREF;
  int command = LUA_NOREF;
  int event = LUA_NOREF;

  raw_vm() {
    luaL_openlibs(L);
    lua_pushcfunction(L, raw_reject);
    lua_setglobal(L, "reject");
    lua_pushlightuserdata(L, nullptr);
    lua_setglobal(L, "null");
    if (luaL_dofile(L, k_path.c_str()) != LUA_OK) {
      std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
      std::abort();
    }
    lua_getglobal(L, "decide");
    decide = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "apply");
    apply = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_dostring(L, "return {open = true, balance = 1000}");
    state = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_dostring(L, "return {type = 'deposit', amount = 50}");
    command = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_dostring(L, "return {type = 'deposited', amount = 50}");
    event = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  ~raw_vm() { lua_close(L); }
};

void raw_decide(benchmark::State& st) {
  raw_vm vm;
  lua_State* L = vm.L;
  for (auto _ : st) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.decide);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.state);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.command);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) st.SkipWithError(lua_tostring(L, -1));
    benchmark::DoNotOptimize(lua_topointer(L, -1));
    lua_pop(L, 1);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(raw_decide);

void raw_apply(benchmark::State& st) {
  raw_vm vm;
  lua_State* L = vm.L;
  for (auto _ : st) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.apply);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.state);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm.event);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) st.SkipWithError(lua_tostring(L, -1));
    lua_rawseti(L, LUA_REGISTRYINDEX, vm.state);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(raw_apply);

state_handle open_account(sandbox& sb) {
  auto s = sb.state_from_json(R"({"open":true,"balance":1000})");
  if (!s) std::abort();
  return std::move(*s);
}

void sandbox_decide(benchmark::State& st) {
  sandbox sb;
  auto p = account();
  auto state = open_account(sb);
  decision out;
  for (auto _ : st) {
    if (auto ok = sb.decide_into(*p, state, k_deposit, out); !ok) st.SkipWithError(ok.err().message.c_str());
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(sandbox_decide);

void sandbox_decide_fresh_vector(benchmark::State& st) {
  sandbox sb;
  auto p = account();
  auto state = open_account(sb);
  for (auto _ : st) {
    auto d = sb.decide(*p, state, k_deposit);
    if (!d) st.SkipWithError(d.err().message.c_str());
    benchmark::DoNotOptimize(d);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(sandbox_decide_fresh_vector);

void sandbox_apply(benchmark::State& st) {
  sandbox sb;
  auto p = account();
  auto state = open_account(sb);
  for (auto _ : st) {
    if (auto ok = sb.apply(*p, state, k_deposited); !ok) st.SkipWithError(ok.err().message.c_str());
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(sandbox_apply);

void sandbox_decide_and_apply(benchmark::State& st) {
  sandbox sb;
  auto p = account();
  auto state = open_account(sb);
  decision out;
  for (auto _ : st) {
    if (auto ok = sb.decide_and_apply(*p, state, k_deposit, out); !ok)
      st.SkipWithError(ok.err().message.c_str());
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(sandbox_decide_and_apply);

void sandbox_rejected_decide(benchmark::State& st) {
  sandbox sb;
  auto p = account();
  auto state = open_account(sb);
  decision out;
  for (auto _ : st) {
    auto ok = sb.decide_into(*p, state, R"({"type":"withdraw","amount":5000})", out);
    benchmark::DoNotOptimize(ok);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(sandbox_rejected_decide);

// Overhead breakdown: the same real path with programs that do (almost) nothing.
void sandbox_decide_trivial(benchmark::State& st, const char* source) {
  sandbox sb;
  program p("trivial", "/bench/trivial.lua", source);
  auto state = open_account(sb);
  decision out;
  for (auto _ : st) {
    if (auto ok = sb.decide_into(p, state, k_deposit, out); !ok) st.SkipWithError(ok.err().message.c_str());
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK_CAPTURE(sandbox_decide_trivial, no_events, "function decide() return {} end");
BENCHMARK_CAPTURE(sandbox_decide_trivial, const_event,
                  "local e = {{type = 'deposited', amount = 50}} function decide() return e end");
BENCHMARK_CAPTURE(sandbox_decide_trivial, new_event,
                  "function decide(s, c) return {{type = 'deposited', amount = c.amount}} end");

}  // namespace

BENCHMARK_MAIN();
