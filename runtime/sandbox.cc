#include "runtime/sandbox.h"

#include "common/log.h"
#include "runtime/gas.h"
#include "runtime/lua_json.h"
#include "runtime/lua_strings.h"

#include <lua.hpp>
#include <simdjson.h>

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace esflow::runtime {
namespace {

using detail::json_writer;

// Permanent slots at the bottom of the VM's main stack.
constexpr int k_slot_msgh = 1;        // message handler for every lua_pcall
constexpr int k_slot_array_mt = 2;    // the array metatable
constexpr int k_slot_trampoline = 3;  // the C function every call runs in (protected)
constexpr int k_base = 3;

// Addresses used as unique keys / sentinels.
const char k_template_key = 0;     // registry: the table of globals programs may see
const char k_reject_sentinel = 0;  // error value raised by reject()

struct memory_meter {
  std::size_t used = 0;
  std::size_t limit = 0;
  bool refused = false;
};

void* metered_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* m = static_cast<memory_meter*>(ud);
  std::size_t old = ptr != nullptr ? osize : 0;  // for a new block osize is a type tag
  if (nsize == 0) {
    std::free(ptr);
    m->used -= old;
    return nullptr;
  }
  if (nsize > old && m->used - old + nsize > m->limit) {
    m->refused = true;  // Lua turns this into a memory error (after an emergency GC retry)
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) {
    m->refused = true;
    return nullptr;
  }
  m->used = m->used - old + nsize;
  return p;
}

struct compiled {
  int decide = LUA_NOREF;
  int apply = LUA_NOREF;
  int initial = LUA_NOREF;
  int project = LUA_NOREF;
  int on_event = LUA_NOREF;
};

enum class op { compile, initial, from_json, apply, decide, decide_apply, project, on_event };

// Everything a protected call needs and produces. Lives in the C++ caller's
// frame (outside the pcall), so the trampoline's frame owns no destructors.
struct call_ctx {
  op kind = op::decide;
  sandbox::impl* sb = nullptr;
  // compile
  const char* source = nullptr;
  std::size_t source_len = 0;
  const char* chunkname = nullptr;
  compiled made;
  // calls
  const compiled* prog = nullptr;
  int state_ref = LUA_NOREF;
  simdjson::dom::element doc;
  // results
  int out_ref = LUA_NOREF;
  decision* out = nullptr;
  const char* bad_input = nullptr;  // static text: the payload handed in cannot be mapped
  const char* missing = nullptr;    // static text: the program lacks a function
  std::string fail;                 // program_error text found by C++ checks
};

}  // namespace

struct sandbox::impl {
  sandbox_options opts;
  memory_meter meter;
  lua_State* L = nullptr;
  detail::gas_meter gas;
  std::string reject_code;
  std::string reject_message;
  std::unordered_map<content_hash, compiled, content_hash_hasher> programs;
  content_hash last_key;
  const compiled* last = nullptr;  // unordered_map nodes are stable
  simdjson::dom::parser parser;
  std::unique_ptr<char[]> pad;
  std::size_t pad_cap = 0;
  json_writer writer{nullptr, k_slot_array_mt};
  std::size_t live_handles = 0;

  static impl* of(lua_State* L) { return *static_cast<impl**>(lua_getextraspace(L)); }

  void arm_gas();
  simdjson::error_code parse(std::string_view json, simdjson::dom::element& out);
  int run(call_ctx& ctx);
  error failure(int rc, call_ctx& ctx, const program* p, const char* call);
  result<const compiled*> compiled_for(const program& p);
};

namespace {

std::string context_of(const program* p, const char* call) {
  std::string ctx;
  if (p != nullptr) {
    ctx = "program=";
    ctx += p->name();
    ctx += ' ';
  }
  ctx += "call=";
  ctx += call;
  return ctx;
}

// --- C callbacks (C frames only: lua_error may longjmp through them) --------

int panic_handler(lua_State* L) {
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "esflow runtime: unprotected Lua error: %s\n", msg != nullptr ? msg : "?");
  std::abort();
}

void gas_hook(lua_State* L, lua_Debug*) { detail::gas_on_hook(L, sandbox::impl::of(L)->gas); }

// Adds "path:line: " of the innermost Lua frame to an error that lacks it.
int message_handler(lua_State* L) {
  if (lua_type(L, 1) == LUA_TLIGHTUSERDATA) return 1;  // reject() sentinel
  const char* msg = lua_tostring(L, 1);
  if (msg == nullptr) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar) != 0; ++level) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0) {
      if (std::strncmp(msg, ar.short_src, std::strlen(ar.short_src)) != 0) {
        lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
      }
      return 1;
    }
  }
  lua_pushstring(L, msg);
  return 1;
}

// reject(code, message): abort decide with a domain rejection.
int lua_reject(lua_State* L) {
  std::size_t code_len = 0;
  std::size_t msg_len = 0;
  const char* code = luaL_checklstring(L, 1, &code_len);
  const char* msg = luaL_optlstring(L, 2, "", &msg_len);
  if (code_len == 0 || code_len > 64) luaL_error(L, "reject: code must be 1..64 characters");
  for (std::size_t i = 0; i < code_len; ++i) {
    char c = code[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-';
    if (!ok) luaL_error(L, "reject: code may hold only letters, digits, '_', '.', '-'");
  }
  sandbox::impl* sb = sandbox::impl::of(L);
  sb->reject_code.assign(code, code_len);
  if (msg_len == 0) {
    sb->reject_message.assign(code, code_len);  // docs/contract.md 10.4 "Answers": the message is never empty
  } else {
    sb->reject_message.assign(msg, msg_len);
  }
  lua_pushlightuserdata(L, const_cast<char*>(&k_reject_sentinel));
  return lua_error(L);
}

// array([t]): marks t (or a new table) as a JSON array, so {} encodes as [].
int lua_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1) != 0) {
      bool same = lua_rawequal(L, -1, lua_upvalueindex(1)) != 0;
      lua_pop(L, 1);
      if (!same) luaL_error(L, "array: the table already has a metatable");
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

// setmetatable without finalizers (__gc) or weak tables (__mode): both make a
// program's behaviour depend on when the collector runs.
int lua_safe_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) luaL_error(L, "setmetatable: __gc is not allowed in programs");
    lua_pushliteral(L, "__mode");
    if (lua_rawget(L, 2) != LUA_TNIL) luaL_error(L, "setmetatable: __mode is not allowed in programs");
    lua_pop(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1));  // the base library's setmetatable
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int lua_restricted_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0) luaL_error(L, "collectgarbage: only \"count\" is allowed in programs");
  lua_pushnumber(L, static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNT, 0)) +
                        static_cast<lua_Number>(lua_gc(L, LUA_GCCOUNTB, 0)) / 1024.0);
  return 1;
}

int lua_locked_newindex(lua_State* L) {
  return luaL_error(L, "cannot assign global '%s' after load: programs keep no state between calls",
                    luaL_tolstring(L, 2, nullptr));
}

// Builds the table of globals programs may see; stores it in the registry.
void build_template(lua_State* L) {
  static constexpr const char* k_base_names[] = {
      "assert", "error",  "ipairs",   "next",     "pairs", "pcall",  "rawequal",     "rawget",   "rawlen",
      "rawset", "select", "tonumber", "tostring", "type",  "xpcall", "getmetatable", "_VERSION",
  };
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  // find/match/gmatch/gsub/rep/format that charge gas (runtime/README.md "Sandbox").
  detail::install_bounded_strings(L, -1, &sandbox::impl::of(L)->gas);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_pop(L, 5);
  // Deliberately never opened: io, os, debug, package, coroutine.

  lua_newtable(L);  // template
  int tmpl = lua_gettop(L);
  lua_pushglobaltable(L);
  int g = lua_gettop(L);
  for (const char* name : k_base_names) {
    lua_getfield(L, g, name);
    lua_setfield(L, tmpl, name);
  }
  for (const char* lib : {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME}) {
    lua_getfield(L, g, lib);
    lua_setfield(L, tmpl, lib);
  }
  lua_getfield(L, tmpl, LUA_MATHLIBNAME);  // deterministic: no random numbers
  lua_pushnil(L);
  lua_setfield(L, -2, "random");
  lua_pushnil(L);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  lua_getfield(L, tmpl, LUA_STRLIBNAME);  // no bytecode out of the VM
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);

  lua_getfield(L, g, "setmetatable");
  lua_pushcclosure(L, lua_safe_setmetatable, 1);
  lua_setfield(L, tmpl, "setmetatable");
  lua_pushcfunction(L, lua_restricted_collectgarbage);
  lua_setfield(L, tmpl, "collectgarbage");
  lua_pushcfunction(L, lua_reject);
  lua_setfield(L, tmpl, "reject");
  lua_pushvalue(L, k_slot_array_mt);
  lua_pushcclosure(L, lua_array, 1);
  lua_setfield(L, tmpl, "array");
  lua_pushlightuserdata(L, nullptr);
  lua_setfield(L, tmpl, "null");

  // The string metatable is shared by all programs: hide it (getmetatable("") -> false).
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);

  lua_pop(L, 1);  // _G
  lua_rawsetp(L, LUA_REGISTRYINDEX, &k_template_key);
}

// --- protected work ----------------------------------------------------------

// Checks the decide result at idx and encodes its events into ctx.out. Never
// raises a Lua error (it owns C++ objects); reports through ctx.fail.
bool encode_decision(lua_State* L, int idx, call_ctx& ctx, json_writer& writer) {
  if (!lua_istable(L, idx)) {
    ctx.fail = std::string("decide must return a list of events, got ") + luaL_typename(L, idx);
    return false;
  }
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, idx));
  // A proper list has no key after n (one lua_next); otherwise count them all.
  if (n == 0) {
    lua_pushnil(L);
  } else {
    lua_pushinteger(L, n);
  }
  if (lua_next(L, idx) != 0) {
    lua_pop(L, 2);
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      ++keys;
      lua_pop(L, 1);
    }
    if (keys != n) {
      ctx.fail = "decide must return a list (array) of events, got a table with non-array keys";
      return false;
    }
  }
  decision& out = *ctx.out;
  if (out.size() > static_cast<std::size_t>(n)) out.resize(static_cast<std::size_t>(n));
  for (lua_Integer i = 1; i <= n; ++i) {
    if (out.size() < static_cast<std::size_t>(i)) out.emplace_back();
    emitted_event& ev = out[static_cast<std::size_t>(i - 1)];
    lua_rawgeti(L, idx, i);
    int e = lua_gettop(L);
    if (!lua_istable(L, e)) {
      ctx.fail = "decide: event " + std::to_string(i) + " is a " + luaL_typename(L, e) + ", not a table";
      lua_pop(L, 1);
      return false;
    }
    lua_pushvalue(L, lua_upvalueindex(2));  // "type"
    lua_rawget(L, e);
    std::size_t len = 0;
    const char* type = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : nullptr;
    if (type == nullptr || len == 0) {
      ctx.fail = "decide: event " + std::to_string(i) + " has no string 'type'";
      lua_pop(L, 2);
      return false;
    }
    ev.event_type.assign(type, len);
    lua_pop(L, 1);
    ev.payload_json.clear();
    if (!writer.write(e, ev.payload_json)) {
      ctx.fail = "decide: event " + std::to_string(i) + " (" + ev.event_type + "): " + writer.error();
      lua_pop(L, 1);
      return false;
    }
    lua_pop(L, 1);
  }
  return true;
}

void push_doc(lua_State* L, call_ctx& c) {
  detail::push_json(L, c.doc, lua_upvalueindex(1), &c.bad_input);
  if (c.bad_input != nullptr) luaL_error(L, "%s", c.bad_input);
}

void need_table(lua_State* L, int idx, const char* what) {
  if (!lua_istable(L, idx)) luaL_error(L, "%s must return a table, got %s", what, luaL_typename(L, idx));
}

void push_function(lua_State* L, call_ctx& c, int ref, const char* missing) {
  if (ref == LUA_NOREF) {
    c.missing = missing;
    luaL_error(L, "%s", missing);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

int ref_if_function(lua_State* L, int table, const char* name) {
  if (lua_getfield(L, table, name) == LUA_TFUNCTION) return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return LUA_NOREF;
}

void do_compile(lua_State* L, call_ctx& c) {
  if (luaL_loadbufferx(L, c.source, c.source_len, c.chunkname, "t") != LUA_OK) lua_error(L);
  int chunk = lua_gettop(L);
  // backing: the program's own globals (own copies of the library tables, so
  // one program cannot change what another sees).
  lua_newtable(L);
  int backing = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &k_template_key);
  int tmpl = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, tmpl) != 0) {
    if (lua_istable(L, -1)) {
      lua_newtable(L);
      int copy = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, copy - 1) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, copy);
      }
      lua_replace(L, -2);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, backing);
  }
  lua_pop(L, 1);  // template
  // _ENV is an empty proxy: reads fall through to backing; writes go to
  // backing while the top level runs, and are refused afterwards.
  lua_newtable(L);
  int proxy = lua_gettop(L);
  lua_createtable(L, 0, 3);
  int mt = lua_gettop(L);
  lua_pushvalue(L, backing);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, backing);
  lua_setfield(L, mt, "__newindex");
  lua_pushvalue(L, mt);
  lua_setmetatable(L, proxy);
  lua_pushvalue(L, proxy);
  if (lua_setupvalue(L, chunk, 1) == nullptr) lua_pop(L, 1);  // a chunk without _ENV use
  lua_pushvalue(L, chunk);
  lua_call(L, 0, 0);
  lua_pushcfunction(L, lua_locked_newindex);
  lua_setfield(L, mt, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, mt, "__metatable");
  c.made.decide = ref_if_function(L, backing, "decide");
  c.made.apply = ref_if_function(L, backing, "apply");
  c.made.initial = ref_if_function(L, backing, "initial_state");
  c.made.project = ref_if_function(L, backing, "project");
  c.made.on_event = ref_if_function(L, backing, "on_event");
}

void do_decide(lua_State* L, call_ctx& c, bool apply_events) {
  push_function(L, c, c.prog->decide, "the program defines no decide(state, command)");
  lua_rawgeti(L, LUA_REGISTRYINDEX, c.state_ref);
  push_doc(L, c);
  lua_call(L, 2, 1);
  int events = lua_gettop(L);
  c.sb->writer.set_array_mt(lua_upvalueindex(1));
  if (!encode_decision(L, events, c, c.sb->writer)) {
    lua_pushstring(L, c.fail.c_str());
    lua_error(L);
  }
  if (!apply_events) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c.state_ref);
  int state = lua_gettop(L);
  auto n = static_cast<lua_Integer>(lua_rawlen(L, events));
  for (lua_Integer i = 1; i <= n; ++i) {
    push_function(L, c, c.prog->apply, "the program defines no apply(state, event)");
    lua_pushvalue(L, state);
    lua_rawgeti(L, events, i);
    lua_call(L, 2, 1);
    need_table(L, -1, "apply");
    lua_replace(L, state);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, c.state_ref);  // commit only after every apply succeeded
}

int trampoline(lua_State* L) {
  auto& c = *static_cast<call_ctx*>(lua_touserdata(L, 1));
  switch (c.kind) {
    case op::compile:
      do_compile(L, c);
      break;
    case op::initial:
      if (c.prog->initial != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c.prog->initial);
        lua_call(L, 0, 1);
        need_table(L, -1, "initial_state");
      } else {
        lua_newtable(L);
      }
      c.out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      break;
    case op::from_json:
      push_doc(L, c);
      c.out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      break;
    case op::apply:
      push_function(L, c, c.prog->apply, "the program defines no apply(state, event)");
      lua_rawgeti(L, LUA_REGISTRYINDEX, c.state_ref);
      push_doc(L, c);
      lua_call(L, 2, 1);
      need_table(L, -1, "apply");
      lua_rawseti(L, LUA_REGISTRYINDEX, c.state_ref);
      break;
    case op::decide:
      do_decide(L, c, false);
      break;
    case op::project:
      push_function(L, c, c.prog->project, "the program defines no project(row, event)");
      if (c.state_ref == LUA_NOREF)
        lua_pushnil(L);
      else
        lua_rawgeti(L, LUA_REGISTRYINDEX, c.state_ref);
      push_doc(L, c);
      lua_call(L, 2, 1);
      if (lua_isnil(L, -1)) {
        c.out_ref = LUA_NOREF;  // the row is deleted
        lua_pop(L, 1);
      } else {
        need_table(L, -1, "project");
        c.out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      }
      break;
    case op::decide_apply:
      do_decide(L, c, true);
      break;
    case op::on_event:
      push_function(L, c, c.prog->on_event, "the program defines no on_event(state, input)");
      if (c.state_ref == LUA_NOREF)
        lua_pushnil(L);
      else
        lua_rawgeti(L, LUA_REGISTRYINDEX, c.state_ref);
      push_doc(L, c);
      lua_call(L, 2, 1);
      need_table(L, -1, "on_event");
      c.out_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      break;
  }
  return 0;
}

}  // namespace

// --- impl --------------------------------------------------------------------

void sandbox::impl::arm_gas() {
  meter.refused = false;
  reject_code.clear();
  gas.budget = opts.gas_per_call;
  detail::gas_arm(L, gas);
}

simdjson::error_code sandbox::impl::parse(std::string_view json, simdjson::dom::element& out) {
  std::size_t need = json.size() + simdjson::SIMDJSON_PADDING;
  if (pad_cap < need) {
    pad_cap = need * 2;
    pad = std::make_unique<char[]>(pad_cap);
  }
  std::memcpy(pad.get(), json.data(), json.size());
  return parser.parse(pad.get(), json.size(), false).get(out);
}

int sandbox::impl::run(call_ctx& ctx) {
  assert(lua_gettop(L) == k_base);
  ctx.sb = this;
  arm_gas();
  lua_pushvalue(L, k_slot_trampoline);
  lua_pushlightuserdata(L, &ctx);
  return lua_pcall(L, 1, 0, k_slot_msgh);
}

error sandbox::impl::failure(int rc, call_ctx& ctx, const program* p, const char* call) {
  std::string where = context_of(p, call);
  error e;
  if (gas.exhausted) {
    std::string text = "ran out of gas";
    if (gas.exhausted_in != nullptr) text += std::string(" in ") + gas.exhausted_in;
    e = error::make(errc::program_error,
                    text + " after " + std::to_string(opts.gas_per_call) + " instructions", std::move(where));
  } else if (rc == LUA_ERRMEM || meter.refused) {
    e = error::make(
        errc::program_error,
        "out of memory (the VM is capped at " + std::to_string(opts.memory_limit_bytes) + " bytes)",
        std::move(where));
  } else if (lua_touserdata(L, -1) == &k_reject_sentinel) {
    if (ctx.kind == op::decide || ctx.kind == op::decide_apply) {
      e = error::domain(reject_code, reject_message);
    } else {
      e = error::make(errc::program_error, "reject(" + reject_code + ") called outside decide",
                      std::move(where));
    }
  } else if (ctx.bad_input != nullptr) {
    e = error::make(errc::invalid_command, std::string("payload: ") + ctx.bad_input, std::move(where));
  } else if (!ctx.fail.empty()) {
    std::string msg = std::move(ctx.fail);
    if (p != nullptr) msg = p->path() + ": " + msg;
    e = error::make(errc::program_error, std::move(msg), std::move(where));
  } else {
    const char* msg = lua_tostring(L, -1);
    std::string text = msg != nullptr ? msg : "unknown error";
    if (ctx.missing != nullptr && p != nullptr) text = p->path() + ": " + ctx.missing;
    e = error::make(errc::program_error, std::move(text), std::move(where));
  }
  lua_settop(L, k_base);
  if (gas.exhausted || meter.refused || rc == LUA_ERRMEM) lua_gc(L, LUA_GCCOLLECT, 0);
  detail::gas_disarm(L, gas);
  meter.refused = false;
  return e;
}

result<const compiled*> sandbox::impl::compiled_for(const program& p) {
  if (last != nullptr && last_key == p.compile_key()) return last;
  if (auto it = programs.find(p.compile_key()); it != programs.end()) {
    last_key = it->first;
    last = &it->second;
    return last;
  }
  std::string chunkname = "@" + p.path();
  call_ctx ctx;
  ctx.kind = op::compile;
  ctx.source = p.source().data();
  ctx.source_len = p.source().size();
  ctx.chunkname = chunkname.c_str();
  if (int rc = run(ctx); rc != LUA_OK) {
    for (int ref : {ctx.made.decide, ctx.made.apply, ctx.made.initial}) luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return failure(rc, ctx, &p, "load");
  }
  auto [it, inserted] = programs.emplace(p.compile_key(), ctx.made);
  (void)inserted;
  last_key = it->first;
  last = &it->second;
  return last;
}

// --- state_handle ------------------------------------------------------------

state_handle::~state_handle() { reset(); }

state_handle::state_handle(state_handle&& other) noexcept : _owner(other._owner), _ref(other._ref) {
  other._owner = nullptr;
}

state_handle& state_handle::operator=(state_handle&& other) noexcept {
  if (this != &other) {
    reset();
    _owner = other._owner;
    _ref = other._ref;
    other._owner = nullptr;
  }
  return *this;
}

void state_handle::reset() noexcept {
  if (_owner != nullptr) _owner->release(_ref);
  _owner = nullptr;
}

// --- sandbox -----------------------------------------------------------------

sandbox::sandbox(sandbox_options options) : _impl(std::make_unique<impl>()) {
  impl& s = *_impl;
  s.opts = options;
  s.meter.limit = options.memory_limit_bytes;
  lua_State* L = lua_newstate(metered_alloc, &s.meter);
  if (L == nullptr) {
    // Only when even the initial state does not fit: retry uncapped so the
    // object is usable, and say so.
    ESFLOW_ERROR("runtime", "memory cap {} too small for a Lua state; ignoring it",
                 options.memory_limit_bytes);
    s.meter.limit = SIZE_MAX;
    L = lua_newstate(metered_alloc, &s.meter);
    if (L == nullptr) std::abort();
  }
  s.L = L;
  s.gas.hook = gas_hook;
  s.gas.memory_limit = s.meter.limit;
  s.writer = json_writer(L, k_slot_array_mt);
  *static_cast<impl**>(lua_getextraspace(L)) = &s;
  lua_atpanic(L, panic_handler);
  lua_gc(L, LUA_GCGEN, 0, 0);  // most garbage is per-call: generational mode suits it

  lua_pushcfunction(L, message_handler);  // k_slot_msgh
  lua_createtable(L, 0, 1);               // k_slot_array_mt
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__metatable");  // programs can see, not change, it
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &detail::k_array_mt_key);
  lua_pushvalue(L, k_slot_array_mt);
  lua_pushliteral(L, "type");
  lua_pushcclosure(L, trampoline, 2);  // k_slot_trampoline
  build_template(L);
  assert(lua_gettop(L) == k_base);
}

sandbox::~sandbox() {
  assert(_impl->live_handles == 0 && "a state_handle outlived its sandbox");
  lua_close(_impl->L);
}

const sandbox_options& sandbox::options() const noexcept { return _impl->opts; }
std::size_t sandbox::memory_used() const noexcept { return _impl->meter.used; }
std::size_t sandbox::compiled_programs() const noexcept { return _impl->programs.size(); }

void sandbox::release(int ref) noexcept {
  luaL_unref(_impl->L, LUA_REGISTRYINDEX, ref);
  --_impl->live_handles;
}

status sandbox::preload(const program& p) {
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  return {};
}

result<state_handle> sandbox::initial_state(const program& p) {
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  call_ctx ctx;
  ctx.kind = op::initial;
  ctx.prog = *c;
  if (int rc = _impl->run(ctx); rc != LUA_OK) return _impl->failure(rc, ctx, &p, "initial_state");
  ++_impl->live_handles;
  return state_handle(this, ctx.out_ref);
}

result<state_handle> sandbox::state_from_json(std::string_view json) {
  call_ctx ctx;
  ctx.kind = op::from_json;
  if (auto ec = _impl->parse(json, ctx.doc); ec != simdjson::SUCCESS) {
    return error::make(errc::invalid_command,
                       std::string("state is not valid JSON: ") + simdjson::error_message(ec),
                       "call=state_from_json");
  }
  if (ctx.doc.type() != simdjson::dom::element_type::OBJECT) {
    return error::make(errc::invalid_command, "state must be a JSON object", "call=state_from_json");
  }
  if (int rc = _impl->run(ctx); rc != LUA_OK) return _impl->failure(rc, ctx, nullptr, "state_from_json");
  ++_impl->live_handles;
  return state_handle(this, ctx.out_ref);
}

result<std::string> sandbox::state_to_json(const state_handle& state) {
  assert(state._owner == this);
  lua_State* L = _impl->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, state._ref);
  std::string out;
  _impl->writer.set_array_mt(k_slot_array_mt);
  bool ok = _impl->writer.write(-1, out);
  lua_settop(L, k_base);
  if (!ok) return error::make(errc::program_error, "state: " + _impl->writer.error(), "call=state_to_json");
  return out;
}

status sandbox::apply(const program& p, state_handle& state, std::string_view event_payload_json) {
  assert(state._owner == this);
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  call_ctx ctx;
  ctx.kind = op::apply;
  ctx.prog = *c;
  ctx.state_ref = state._ref;
  if (auto ec = _impl->parse(event_payload_json, ctx.doc); ec != simdjson::SUCCESS) {
    return error::make(errc::invalid_command,
                       std::string("event payload is not valid JSON: ") + simdjson::error_message(ec),
                       context_of(&p, "apply"));
  }
  if (int rc = _impl->run(ctx); rc != LUA_OK) return _impl->failure(rc, ctx, &p, "apply");
  return {};
}

bool sandbox::defines_project(const program& p) {
  auto c = _impl->compiled_for(p);
  return c.ok() && (*c)->project != LUA_NOREF;
}

bool sandbox::defines_on_event(const program& p) {
  auto c = _impl->compiled_for(p);
  return c.ok() && (*c)->on_event != LUA_NOREF;
}

status sandbox::project(const program& p, state_handle& row, std::string_view event_json) {
  assert(!row.valid() || row._owner == this);
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  call_ctx ctx;
  ctx.kind = op::project;
  ctx.prog = *c;
  ctx.state_ref = row.valid() ? row._ref : LUA_NOREF;
  if (auto ec = _impl->parse(event_json, ctx.doc); ec != simdjson::SUCCESS) {
    return error::make(errc::invalid_command,
                       std::string("event is not valid JSON: ") + simdjson::error_message(ec),
                       context_of(&p, "project"));
  }
  if (int rc = _impl->run(ctx); rc != LUA_OK) return _impl->failure(rc, ctx, &p, "project");
  row.reset();
  if (ctx.out_ref != LUA_NOREF) {
    ++_impl->live_handles;
    row = state_handle(this, ctx.out_ref);
  }
  return {};
}

result<state_handle> sandbox::on_event(const program& p, const state_handle* state,
                                       std::string_view input_json) {
  assert(state == nullptr || !state->valid() || state->_owner == this);
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  call_ctx ctx;
  ctx.kind = op::on_event;
  ctx.prog = *c;
  ctx.state_ref = state != nullptr && state->valid() ? state->_ref : LUA_NOREF;
  if (auto ec = _impl->parse(input_json, ctx.doc); ec != simdjson::SUCCESS) {
    return error::make(errc::invalid_command,
                       std::string("saga input is not valid JSON: ") + simdjson::error_message(ec),
                       context_of(&p, "on_event"));
  }
  if (int rc = _impl->run(ctx); rc != LUA_OK) return _impl->failure(rc, ctx, &p, "on_event");
  ++_impl->live_handles;
  return state_handle(this, ctx.out_ref);
}

// decide and decide-then-apply share everything but the call kind.
status sandbox::run_decide(const program& p, int state_ref, std::string_view command_payload_json,
                           decision& out, bool apply) {
  auto c = _impl->compiled_for(p);
  if (!c) return std::move(c).err();
  call_ctx ctx;
  ctx.kind = apply ? op::decide_apply : op::decide;
  ctx.prog = *c;
  ctx.state_ref = state_ref;
  ctx.out = &out;
  if (auto ec = _impl->parse(command_payload_json, ctx.doc); ec != simdjson::SUCCESS) {
    return error::make(errc::invalid_command,
                       std::string("command payload is not valid JSON: ") + simdjson::error_message(ec),
                       context_of(&p, "decide"));
  }
  if (int rc = _impl->run(ctx); rc != LUA_OK) {
    out.clear();
    return _impl->failure(rc, ctx, &p, "decide");
  }
  return {};
}

status sandbox::decide_into(const program& p, const state_handle& state,
                            std::string_view command_payload_json, decision& out) {
  assert(state._owner == this);
  return run_decide(p, state._ref, command_payload_json, out, /*apply=*/false);
}

result<decision> sandbox::decide(const program& p, const state_handle& state,
                                 std::string_view command_payload_json) {
  decision out;
  if (auto ok = decide_into(p, state, command_payload_json, out); !ok) return std::move(ok).err();
  return out;
}

status sandbox::decide_and_apply(const program& p, state_handle& state, std::string_view command_payload_json,
                                 decision& out) {
  assert(state._owner == this);
  return run_decide(p, state._ref, command_payload_json, out, /*apply=*/true);
}

}  // namespace esflow::runtime
