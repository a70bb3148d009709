// The Lua sandbox: what programs cannot reach, gas, memory cap, error shapes.
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>

#include <chrono>

namespace esflow::runtime {
namespace {

using testing::decide_one;
using testing::make_program;
using testing::probe;

class sandbox_removal : public ::testing::TestWithParam<const char*> {};

TEST_P(sandbox_removal, global_is_absent) {
  sandbox sb;
  auto p = probe(std::string("type(") + GetParam() + ")");
  EXPECT_EQ(decide_one(sb, *p), R"({"type":"r","v":"nil"})") << GetParam();
}

INSTANTIATE_TEST_SUITE_P(all, sandbox_removal,
                         ::testing::Values("io", "os", "debug", "package", "require", "dofile", "loadfile",
                                           "load", "loadstring", "print", "coroutine", "string.dump",
                                           "math.random", "math.randomseed", "_G"));

TEST(sandbox, safe_globals_are_present) {
  sandbox sb;
  auto p = probe(
      "type(pairs) .. type(string.format) .. type(table.insert) .. type(math.floor) .. type(utf8.char)");
  EXPECT_EQ(decide_one(sb, *p), R"({"type":"r","v":"functionfunctionfunctionfunctionfunction"})");
}

TEST(sandbox, refuses_bytecode_chunks) {
  std::string binary = "\x1bLua\x54";
  binary += std::string(40, '\0');
  auto syntax = check_syntax(binary, "/programs/bin.lua");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.err().code, errc::program_error);
  EXPECT_NE(syntax.err().message.find("attempt to load a binary chunk"), std::string::npos)
      << syntax.err().message;

  program_cache cache;
  EXPECT_FALSE(cache.put("bin", "/programs/bin.lua", binary).ok());

  sandbox sb;
  auto p = make_program(binary, "/programs/bin.lua");
  auto st = sb.initial_state(*p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::program_error);
  EXPECT_NE(st.err().message.find("binary chunk"), std::string::npos) << st.err().message;
}

TEST(sandbox, string_metatable_is_hidden) {
  sandbox sb;
  EXPECT_EQ(decide_one(sb, *probe("tostring(getmetatable(''))")), R"({"type":"r","v":"false"})");
  // Methods on strings still work.
  EXPECT_EQ(decide_one(sb, *probe("('abc'):upper()")), R"({"type":"r","v":"ABC"})");
}

TEST(sandbox, refuses_finalizers_and_weak_tables) {
  sandbox sb;
  auto gc = decide_one(sb, *probe("setmetatable({}, {__gc = function() end}) and 1"));
  EXPECT_NE(gc.find("program_error"), std::string::npos) << gc;
  EXPECT_NE(gc.find("__gc is not allowed"), std::string::npos) << gc;
  auto weak = decide_one(sb, *probe("setmetatable({}, {__mode = 'k'}) and 1"));
  EXPECT_NE(weak.find("__mode is not allowed"), std::string::npos) << weak;
  EXPECT_EQ(decide_one(sb, *probe("getmetatable(setmetatable({}, {__index = {a = 7}})).__index.a")),
            R"({"type":"r","v":7})");
}

TEST(sandbox, collectgarbage_allows_only_count) {
  sandbox sb;
  EXPECT_EQ(decide_one(sb, *probe("type(collectgarbage('count'))")), R"({"type":"r","v":"number"})");
  auto collect = decide_one(sb, *probe("collectgarbage('collect')"));
  EXPECT_NE(collect.find("only \"count\" is allowed"), std::string::npos) << collect;
}

TEST(sandbox, globals_are_read_only_after_load) {
  sandbox sb;
  auto p = make_program(
      "counter = 0\n"
      "function decide(state, command)\n"
      "  counter = counter + 1\n"
      "  return {}\n"
      "end\n",
      "/programs/counter.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok()) << st.err().to_string();
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::program_error);
  EXPECT_NE(d.err().message.find("/programs/counter.lua:3:"), std::string::npos) << d.err().message;
  EXPECT_NE(d.err().message.find("cannot assign global 'counter'"), std::string::npos) << d.err().message;
}

TEST(sandbox, programs_do_not_share_library_tables) {
  sandbox sb;
  auto vandal = make_program("string.upper = nil\nmath.floor = nil\nfunction decide() return {} end\n",
                             "/programs/vandal.lua");
  ASSERT_TRUE(sb.preload(*vandal).ok());
  EXPECT_EQ(decide_one(sb, *probe("string.upper('a') .. math.floor(2.5)")), R"({"type":"r","v":"A2"})");
}

TEST(sandbox, infinite_loop_runs_out_of_gas_quickly) {
  sandbox sb(sandbox_options{.gas_per_call = 1'000'000});
  auto p = make_program("function decide(state, command) while true do end end\n", "/programs/spin.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto start = std::chrono::steady_clock::now();
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::program_error);
  EXPECT_EQ(d.err().message, "ran out of gas after 1000000 instructions");
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(sandbox, pcall_cannot_swallow_out_of_gas) {
  sandbox sb(sandbox_options{.gas_per_call = 100'000});
  auto p = make_program(
      "function decide(state, command)\n"
      "  while true do pcall(function() while true do end end) end\n"
      "end\n",
      "/programs/sneaky.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().message, "ran out of gas after 100000 instructions");
  // And the sandbox is fine afterwards.
  EXPECT_EQ(decide_one(sb, *probe("1 + 1")), R"({"type":"r","v":2})");
}

TEST(sandbox, gas_applies_to_the_top_level_of_a_program) {
  sandbox sb(sandbox_options{.gas_per_call = 10'000});
  auto p = make_program("while true do end\n", "/programs/toplevel.lua");
  auto ok = sb.preload(*p);
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.err().message, "ran out of gas after 10000 instructions");
}

TEST(sandbox, string_bomb_is_refused_and_vm_survives) {
  sandbox sb(sandbox_options{.gas_per_call = 10'000'000, .memory_limit_bytes = 16u << 20});
  auto p = make_program("function decide(s, c) local x = string.rep('x', 1 << 30) return {} end\n",
                        "/programs/bomb.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::program_error);
  EXPECT_EQ(d.err().message,
            "/programs/bomb.lua:1: string.rep: a result of 1073741824 bytes exceeds the VM's memory cap of "
            "16777216 bytes");
  EXPECT_LT(sb.memory_used(), std::size_t{16} << 20);
  EXPECT_EQ(decide_one(sb, *probe("'still alive'")), R"({"type":"r","v":"still alive"})");
}

TEST(sandbox, table_growth_runs_out_of_memory_and_vm_survives) {
  sandbox sb(sandbox_options{.gas_per_call = 2'000'000'000, .memory_limit_bytes = 8u << 20});
  auto p = make_program(
      "function decide(s, c)\n"
      "  local t = {}\n"
      "  for i = 1, 1e12 do t[i] = {i} end\n"
      "end\n",
      "/programs/grow.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto before = sb.memory_used();
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().message, "out of memory (the VM is capped at 8388608 bytes)");
  EXPECT_LT(sb.memory_used(), before + (std::size_t{1} << 20));  // the garbage was collected
  auto again = sb.decide(*p, *st, R"({"type":"x"})");            // and the same program fails the same way
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().message, d.err().message);
  EXPECT_EQ(decide_one(sb, *probe("'ok'")), R"({"type":"r","v":"ok"})");
}

TEST(sandbox, error_reports_program_file_and_line) {
  sandbox sb;
  auto p = make_program(
      "function decide(state, command)\n"
      "  if command.type == 'boom' then\n"
      "    error('boom: ' .. command.type)\n"
      "  elseif command.type == 'nil' then\n"
      "    return command.missing.field\n"
      "  elseif command.type == 'table' then\n"
      "    error({code = 1})\n"
      "  end\n"
      "  return {}\n"
      "end\n",
      "/programs/raise.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto boom = sb.decide(*p, *st, R"({"type":"boom"})");
  ASSERT_FALSE(boom.ok());
  EXPECT_EQ(boom.err().code, errc::program_error);
  EXPECT_EQ(boom.err().code_text, "program_error");
  EXPECT_EQ(boom.err().message, "/programs/raise.lua:3: boom: boom");
  EXPECT_NE(boom.err().context.find("program=test call=decide"), std::string::npos) << boom.err().context;

  auto runtime = sb.decide(*p, *st, R"({"type":"nil"})");
  ASSERT_FALSE(runtime.ok());
  EXPECT_EQ(runtime.err().message, "/programs/raise.lua:5: attempt to index a nil value (field 'missing')");

  auto table = sb.decide(*p, *st, R"({"type":"table"})");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.err().message, "/programs/raise.lua:7: (error object is a table value)");

  auto fine = sb.decide(*p, *st, R"({"type":"other"})");
  ASSERT_TRUE(fine.ok()) << fine.err().to_string();
  EXPECT_TRUE(fine->empty());
}

TEST(sandbox, syntax_error_reports_file_and_line) {
  sandbox sb;
  auto p = make_program("function decide(state, command)\n  return {{\nend\n", "/programs/broken.lua");
  auto ok = sb.preload(*p);
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.err().code, errc::program_error);
  EXPECT_EQ(ok.err().message.rfind("/programs/broken.lua:3:", 0), 0u) << ok.err().message;
}

TEST(sandbox, reject_is_a_domain_rejection) {
  sandbox sb;
  auto p = make_program(
      "function decide(state, command)\n"
      "  reject('insufficient_funds', 'balance 10 < 100')\n"
      "end\n",
      "/programs/reject.lua");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto d = sb.decide(*p, *st, R"({"type":"withdraw"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::domain_rejection);
  EXPECT_EQ(d.err().code_text, "insufficient_funds");
  EXPECT_EQ(d.err().message, "balance 10 < 100");
}

TEST(sandbox, reject_validates_its_code_and_fills_an_empty_message) {
  sandbox sb;
  auto st = sb.initial_state(*probe("1"));
  ASSERT_TRUE(st.ok());
  auto bad = sb.decide(*make_program("function decide() reject('has space', 'x') end"), *st, "{}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::program_error);
  EXPECT_NE(bad.err().message.find("reject: code may hold only"), std::string::npos) << bad.err().message;
  auto empty =
      sb.decide(*make_program("function decide() reject('nope') end", "/programs/nope.lua"), *st, "{}");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.err().code_text, "nope");
  EXPECT_EQ(empty.err().message, "nope");
}

TEST(sandbox, reject_caught_by_pcall_is_the_programs_business) {
  sandbox sb;
  auto p = make_program(
      "function decide(state, command)\n"
      "  local ok = pcall(reject, 'x', 'y')\n"
      "  return {{type = 'after', ok = ok}}\n"
      "end\n");
  EXPECT_EQ(decide_one(sb, *p), R"({"ok":false,"type":"after"})");
}

TEST(sandbox, reject_outside_decide_is_a_program_error) {
  sandbox sb;
  auto p = make_program(
      "function decide() return {{type = 'e'}} end\n"
      "function apply(state, event) reject('nope', 'no') end\n");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto ok = sb.apply(*p, *st, R"({"type":"e"})");
  ASSERT_FALSE(ok.ok());
  EXPECT_EQ(ok.err().code, errc::program_error);
  EXPECT_EQ(ok.err().message, "reject(nope) called outside decide");
}

TEST(sandbox, malformed_decide_results_are_program_errors) {
  sandbox sb;
  struct row {
    const char* ret;
    const char* message;
  };
  const row rows[] = {
      {"nil", "decide must return a list of events, got nil"},
      {"{type = 'x'}", "decide must return a list (array) of events, got a table with non-array keys"},
      {"{1}", "decide: event 1 is a number, not a table"},
      {"{{amount = 1}}", "decide: event 1 has no string 'type'"},
      {"{{type = 'x', f = print or function() end}}",
       "decide: event 1 (x): cannot encode a function as JSON at $.f"},
      {"{{type = 'x', n = 0/0}}", "decide: event 1 (x): cannot encode NaN as JSON at $.n"},
      {"{{type = 'x', a = {[true] = 1}}}",
       "decide: event 1 (x): cannot encode a table with a boolean key as JSON at $.a"},
      {"{{type = 'x', a = {1, 2, k = 3}}}",
       "decide: event 1 (x): cannot encode a table that mixes string and integer keys as JSON at $.a"},
      {"{{type = 'x', a = {[1] = 1, [3] = 3}}}",
       "decide: event 1 (x): cannot encode a table with integer keys that are not 1..n as JSON at $.a"},
      {"{{type = 'x', a = {{}, {1, 2, 0/0}}}}",
       "decide: event 1 (x): cannot encode NaN as JSON at $.a[2][3]"},
      {"{{type = 'x', s = '\\xff'}}",
       "decide: event 1 (x): cannot encode a string that is not valid UTF-8 as JSON at $.s"},
  };
  for (const auto& r : rows) {
    auto p = make_program(std::string("function decide() return ") + r.ret + " end", "/programs/bad.lua");
    auto st = sb.initial_state(*p);
    ASSERT_TRUE(st.ok());
    auto d = sb.decide(*p, *st, "{}");
    ASSERT_FALSE(d.ok()) << r.ret;
    EXPECT_EQ(d.err().code, errc::program_error) << r.ret;
    EXPECT_EQ(d.err().message, std::string("/programs/bad.lua: ") + r.message) << r.ret;
  }
}

TEST(sandbox, cyclic_event_is_refused) {
  sandbox sb;
  auto out =
      decide_one(sb, *make_program("function decide() local e = {type = 'x'} e.self = e return {e} end"));
  EXPECT_NE(out.find("nested too deeply (or cyclic)"), std::string::npos) << out;
}

TEST(sandbox, missing_functions_are_reported) {
  sandbox sb;
  auto p = make_program("x = 1\n", "/programs/empty.lua");
  auto st = sb.initial_state(*p);  // no initial_state(): {}
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(*sb.state_to_json(*st), "{}");
  auto d = sb.decide(*p, *st, "{}");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().message, "/programs/empty.lua: the program defines no decide(state, command)");
  auto a = sb.apply(*p, *st, "{}");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.err().message, "/programs/empty.lua: the program defines no apply(state, event)");
}

TEST(sandbox, apply_must_return_a_table_and_failure_keeps_state) {
  sandbox sb;
  auto p = make_program(
      "function initial_state() return {n = 1} end\n"
      "function apply(state, event) if event.bad then return nil end return {n = state.n + event.by} end\n");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(sb.apply(*p, *st, R"({"type":"e","by":2})").ok());
  auto bad = sb.apply(*p, *st, R"({"type":"e","bad":true})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, "apply must return a table, got nil");
  EXPECT_EQ(*sb.state_to_json(*st), R"({"n":3})");
}

TEST(sandbox, invalid_payload_json_is_invalid_command) {
  sandbox sb;
  auto p = probe("1");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  auto d = sb.decide(*p, *st, R"({"type":)");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::invalid_command);
  EXPECT_EQ(d.err().message.rfind("command payload is not valid JSON", 0), 0u) << d.err().message;
  auto big = sb.decide(*p, *st, R"({"type":"x","n":18446744073709551615})");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.err().code, errc::invalid_command);
  EXPECT_EQ(big.err().message, "payload: integer out of the int64 range");
}

TEST(sandbox, compiles_each_program_once) {
  sandbox sb;
  auto p = make_program(
      "loads = (loads or 0) + 1\n"
      "function decide() return {{type = 'n', loads = loads}} end\n");
  EXPECT_EQ(decide_one(sb, *p), R"({"loads":1,"type":"n"})");
  EXPECT_EQ(decide_one(sb, *p), R"({"loads":1,"type":"n"})");
  auto copy = make_program(p->source(), p->path());  // another object, same key
  EXPECT_EQ(decide_one(sb, *copy), R"({"loads":1,"type":"n"})");
  EXPECT_EQ(sb.compiled_programs(), 1u);
}

TEST(sandbox, decide_and_apply_commits_only_on_success) {
  sandbox sb;
  auto p = make_program(
      "function initial_state() return {n = 0} end\n"
      "function decide(state, command)\n"
      "  return {{type = 'inc', by = command.by}, {type = 'inc', by = command.then_by}}\n"
      "end\n"
      "function apply(state, event) return {n = state.n + event.by} end\n");
  auto st = sb.initial_state(*p);
  ASSERT_TRUE(st.ok());
  decision out;
  ASSERT_TRUE(sb.decide_and_apply(*p, *st, R"({"by":2,"then_by":3})", out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].payload_json, R"({"by":3,"type":"inc"})");
  EXPECT_EQ(*sb.state_to_json(*st), R"({"n":5})");
  // The second apply fails (by is a string): nothing is committed.
  auto bad = sb.decide_and_apply(*p, *st, R"({"by":1,"then_by":"x"})", out);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::program_error);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(*sb.state_to_json(*st), R"({"n":5})");
}

TEST(sandbox, state_handles_release_their_tables) {
  sandbox sb;
  auto p = probe("1");
  ASSERT_TRUE(sb.preload(*p).ok());
  {
    auto warm = sb.state_from_json(R"({"a":1})");
    ASSERT_TRUE(warm.ok());
  }
  auto base = sb.memory_used();
  for (int i = 0; i < 20000; ++i) {
    auto st = sb.state_from_json(R"({"payload":"0123456789012345678901234567890123456789"})");
    ASSERT_TRUE(st.ok());
    state_handle moved = std::move(*st);
    EXPECT_TRUE(moved.valid());
  }
  EXPECT_LT(sb.memory_used(), base + (std::size_t{2} << 20));
}

}  // namespace
}  // namespace esflow::runtime
