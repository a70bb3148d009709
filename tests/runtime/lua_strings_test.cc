// The sandbox's bounded string functions (runtime/lua_strings.h): Lua 5.4
// results on a table of cases (each also checked against stock Lua's string
// library), and work that used to run unbounded inside one C call now ends
// as program_error.
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>
#include <lua.hpp>

#include <chrono>
#include <string>

namespace esflow::runtime {
namespace {

using testing::decide_one;
using testing::make_program;

// show(...) joins its arguments with '|' (tostring each), so one string says
// every result, nils included.
constexpr const char* k_show =
    "local function show(...)\n"
    "  local out = {}\n"
    "  for i = 1, select('#', ...) do out[i] = tostring((select(i, ...))) end\n"
    "  return table.concat(out, '|')\n"
    "end\n";

struct string_case {
  const char* expr;
  const char* expected;
};

const string_case k_cases[] = {
    // find: positions, plain, init, captures, anchors
    {R"~(string.find("hello world", "o w"))~", "5|7"},
    {R"~(string.find("hello", "l+"))~", "3|4"},
    {R"~(string.find("hello", "xyz"))~", "nil"},
    {R"~(string.find("a.b", ".", 1, true))~", "2|2"},
    {R"~(string.find("a+b", "+", 1, true))~", "2|2"},
    {R"~(string.find("abc", "b", -1))~", "nil"},
    {R"~(string.find("abc", "", 10))~", "nil"},
    {R"~(string.find("abc", "", 4))~", "4|3"},
    {R"~(string.find("key = value", "(%w+)%s*=%s*(%w+)"))~", "1|11|key|value"},
    {R"~(string.find("abc", "^b"))~", "nil"},
    {R"~(string.find("abc", "^a"))~", "1|1"},
    {R"~(string.find("a$b", "$b"))~", "2|3"},
    {R"~(string.find("hello", "%f[%W]"))~", "6|5"},
    // match: classes, sets, repetitions, captures, position captures, %b, %f
    {R"~(string.match("hello 123 world", "%d+"))~", "123"},
    {R"~(string.match("  trim  ", "^%s*(.-)%s*$"))~", "trim"},
    {R"~(string.match("abc", "()b()"))~", "2|3"},
    {R"~(string.match("f(a(b)c)d", "%b()"))~", "(a(b)c)"},
    {R"~(string.match("((a)", "%b()"))~", "(a)"},
    {R"~(string.match("THE (quick) fox", "%f[%a]%a+", 5))~", "quick"},
    {R"~(string.match("2024-01-15", "(%d+)-(%d+)-(%d+)"))~", "2024|01|15"},
    {R"~(string.match("say 'hi' now", "([\"'])(.-)%1"))~", "'|hi"},
    {R"~(string.match("abc123", "[%a]+"))~", "abc"},
    {R"~(string.match("x-y", "[a%-z]+"))~", "-"},
    {R"~(string.match("]]a", "[]]+"))~", "]]"},
    {R"~(string.match("hello", "[^aeiou]+"))~", "h"},
    {R"~(string.match("Hello", "[A-Z][a-z]*"))~", "Hello"},
    {R"~(string.match("color colour", "colou?r", 2))~", "colour"},
    {R"~(string.match("<a><b>", "<(.-)>"))~", "a"},
    {R"~(string.match("aXbXc", "(.-)X(.*)"))~", "a|bXc"},
    {R"~(string.match("hello", ".", -2))~", "l"},
    {R"~(string.match("abc", "((a)(b))c"))~", "ab|a|b"},
    {R"~(string.match("", ".*"))~", ""},
    // gsub: string with %0/%1/%%, table, function (nil keeps), n limit, empty matches
    {R"~(string.gsub("hello world", "(%w+)", "<%1>"))~", "<hello> <world>|2"},
    {R"~(string.gsub("hello world", "%w+", "%0 %0"))~", "hello hello world world|2"},
    {R"~(string.gsub("hello world", "%w+", "%0 %0", 1))~", "hello hello world|1"},
    {R"~(string.gsub("hello world", "o", "0", 1))~", "hell0 world|1"},
    {R"~(string.gsub("hello world", "(o)", "[%1]", 0))~", "hello world|0"},
    {R"~(string.gsub("hello", "l", "%%"))~", "he%%o|2"},
    {R"~(string.gsub("abc", "b", 5))~", "a5c|1"},
    {R"~(string.gsub("THE (quick) fox", "%f[%a]%w+", "X"))~", "X (X) X|3"},
    {R"~(string.gsub("hello world", "o", {o = "0"}))~", "hell0 w0rld|2"},
    {R"~(string.gsub("$name is $age", "%$(%w+)", {name = "Bob", age = 42}))~", "Bob is 42|2"},
    {R"~(string.gsub("$name $x", "%$(%w+)", {name = "Bob"}))~", "Bob $x|2"},
    {R"~(string.gsub("abc", "%w", function(c) return string.upper(c) .. "." end))~", "A.B.C.|3"},
    {R"~(string.gsub("abc", "%w", function(c) if c == "b" then return nil end return "x" end))~", "xbx|3"},
    {R"~(string.gsub("ab", "()", function(p) return p end))~", "1a2b3|3"},
    {R"~(string.gsub("abc", "", "-"))~", "-a-b-c-|4"},
    {R"~(string.gsub("abc", "x*", "-"))~", "-a-b-c-|4"},
    {R"~(string.gsub("aaa", "^a", "x"))~", "xaa|1"},
    {R"~(string.gsub("a,b,,c", ",", ";"))~", "a;b;;c|3"},
    // gmatch: captures, empty matches, init
    {R"~((function() local t = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do t[#t + 1] = k .. v end
          return table.concat(t, ",") end)())~",
     "a1,b2"},
    {R"~((function() local t = {} for w in string.gmatch("abc", "x*") do t[#t + 1] = "[" .. w .. "]" end
          return table.concat(t) end)())~",
     "[][][][]"},
    {R"~((function() local t = {} for w in string.gmatch("one two three", "%a+", 5) do t[#t + 1] = w end
          return table.concat(t, ",") end)())~",
     "two,three"},
    {R"~((function() local t = {} for p in string.gmatch("abc", "()") do t[#t + 1] = p end
          return table.concat(t, ",") end)())~",
     "1,2,3,4"},
    // rep and format keep their results
    {R"~(string.rep("ab", 3, ","))~", "ab,ab,ab"},
    {R"~(string.rep("x", 0))~", ""},
    {R"~(string.rep("", 5))~", ""},
    {R"~(("ab"):rep(2))~", "abab"},
    {R"~(string.format("%5.2f %d %s", 3.14159, 42, "hi"))~", " 3.14 42 hi"},
    // malformed patterns raise (only "false" is compared: the texts name the function)
    {R"~((pcall(string.find, "a", "%")))~", "false"},
    {R"~((pcall(string.find, "a", "[a")))~", "false"},
    {R"~((pcall(string.match, "a", "(a")))~", "false"},
    {R"~((pcall(string.match, "a", "a)")))~", "false"},
    {R"~((pcall(string.match, "a", "%1")))~", "false"},
    {R"~((pcall(string.gsub, "a", "a", "%2")))~", "false"},
    {R"~((pcall(string.gsub, "a", "a", "%x")))~", "false"},
    {R"~((pcall(string.gsub, "a", "a", true)))~", "false"},
    {R"~((pcall(string.find, "a", "%f")))~", "false"},
    {R"~((pcall(string.find, "a", "%b")))~", "false"},
};

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// The same expression under stock Lua 5.4 (its own string library).
std::string stock_lua(const char* expr) {
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  std::string chunk = std::string(k_show) + "return show(" + expr + ")";
  std::string out;
  if (luaL_dostring(L, chunk.c_str()) != LUA_OK) {
    out = std::string("ERROR ") + lua_tostring(L, -1);
  } else {
    std::size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    out.assign(s, len);
  }
  lua_close(L);
  return out;
}

TEST(lua_strings, results_are_lua_5_4s) {
  sandbox sb;
  for (const auto& c : k_cases) {
    auto p =
        make_program(std::string(k_show) + "function decide(state, command) return {{type = 'r', v = show(" +
                     c.expr + ")}} end\n");
    EXPECT_EQ(decide_one(sb, *p), R"({"type":"r","v":)" + json_string(c.expected) + "}") << c.expr;
    EXPECT_EQ(stock_lua(c.expr), c.expected) << "stock Lua disagrees with the table: " << c.expr;
  }
}

// Runs decide of a program whose body is `body`; returns the error (or a
// failure when it succeeds) and how long it took.
struct timed_error {
  error err;
  std::chrono::steady_clock::duration took;
};

timed_error decide_error(sandbox& sb, const std::string& body) {
  auto p = make_program("function decide(state, command)\n" + body + "\nend\n", "/programs/strings.lua");
  auto st = sb.initial_state(*p);
  EXPECT_TRUE(st.ok());
  if (!st.ok()) return {st.err(), {}};
  auto start = std::chrono::steady_clock::now();
  auto d = sb.decide(*p, *st, R"({"type":"x"})");
  auto took = std::chrono::steady_clock::now() - start;
  if (d.ok()) return {error::make(errc::internal, "decide succeeded"), took};
  return {d.err(), took};
}

// Generous: it proves the call ends; stock Lua runs these for minutes or more.
constexpr auto k_ends_within = std::chrono::seconds(5);

TEST(lua_strings, backtracking_patterns_run_out_of_gas) {
  sandbox sb;  // the default 10M instructions per call
  const char* fns[] = {"find", "match", "gmatch", "gsub"};
  for (const char* fn : fns) {
    std::string call = std::string("string.") + fn + "(s, '.-.-.-.-.-b'" +
                       (std::string(fn) == "gsub"     ? ", 'x')"
                        : std::string(fn) == "gmatch" ? ")()"
                                                      : ")");
    auto r = decide_error(sb, "local s = ('a'):rep(200000)\nlocal x = " + call + "\nreturn {}");
    EXPECT_EQ(r.err.code, errc::program_error) << fn << ": " << r.err.to_string();
    EXPECT_EQ(r.err.message, std::string("ran out of gas in string.") + fn + " after 10000000 instructions");
    EXPECT_LT(r.took, k_ends_within) << fn;
  }
}

TEST(lua_strings, pcall_cannot_swallow_a_pattern_out_of_gas) {
  sandbox sb(sandbox_options{.gas_per_call = 1'000'000});
  auto r = decide_error(sb,
                        "local s = ('a'):rep(5000)\n"
                        "for i = 1, 10 do pcall(string.find, s, '.-.-.-b') end\n"
                        "return {}");
  EXPECT_EQ(r.err.code, errc::program_error);
  EXPECT_EQ(r.err.message, "ran out of gas in string.find after 1000000 instructions");
  EXPECT_LT(r.took, k_ends_within);
  EXPECT_EQ(decide_one(sb, *testing::probe("string.find('ab', 'b')")), R"({"type":"r","v":2})");
}

TEST(lua_strings, a_huge_rep_is_refused_and_an_empty_one_does_not_loop) {
  sandbox sb;  // 64 MiB cap
  auto r = decide_error(sb, "local x = string.rep('x', 1e9)\nreturn {}");
  EXPECT_EQ(r.err.code, errc::program_error);
  EXPECT_EQ(
      r.err.message,
      "/programs/strings.lua:2: string.rep: a result of 1000000000 bytes exceeds the VM's memory cap of "
      "67108864 bytes");
  EXPECT_LT(r.took, k_ends_within);

  // Stock Lua loops n times copying nothing.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(decide_one(sb, *testing::probe("#string.rep('', 1e15) + #string.rep('', 1e15, '')")),
            R"({"type":"r","v":0})");
  EXPECT_LT(std::chrono::steady_clock::now() - start, k_ends_within);
}

TEST(lua_strings, rep_and_format_charge_gas_for_the_bytes_they_make) {
  sandbox sb(sandbox_options{.gas_per_call = 50'000});
  // 4 MB is 125k steps at 32 bytes a step: over the budget, though it fits in memory.
  auto rep = decide_error(sb, "local x = string.rep('ab', 2000000)\nreturn {}");
  EXPECT_EQ(rep.err.code, errc::program_error);
  EXPECT_EQ(rep.err.message, "ran out of gas in string.rep after 50000 instructions");

  auto fmt = decide_error(sb,
                          "local s = string.rep('x', 1000000)\n"  // 31k steps
                          "local x = string.format('%s%s', s, s)\n"
                          "return {}");
  EXPECT_EQ(fmt.err.code, errc::program_error);
  EXPECT_EQ(fmt.err.message, "ran out of gas in string.format after 50000 instructions");

  EXPECT_EQ(decide_one(sb, *testing::probe("#string.rep('ab', 1000)")), R"({"type":"r","v":2000})");
}

TEST(lua_strings, string_work_and_instructions_share_one_budget) {
  // ~60k loop instructions and ~65k steps of plain search (20 scans of 100 kB
  // at 32 bytes a step): each fits in 100k, together they do not.
  sandbox sb(sandbox_options{.gas_per_call = 100'000});
  const std::string loop = "for j = 1, 60000 do end\n";
  const std::string finds =
      "local s = string.rep('a', 100000)\n"
      "for i = 1, 20 do string.find(s, 'b', 1, true) end\n";
  auto p_loop = make_program("function decide(state, command)\n" + loop + "return {{type = 'r'}} end\n");
  auto p_finds = make_program("function decide(state, command)\n" + finds + "return {{type = 'r'}} end\n");
  EXPECT_EQ(decide_one(sb, *p_loop), R"({"type":"r"})");
  EXPECT_EQ(decide_one(sb, *p_finds), R"({"type":"r"})");
  auto r = decide_error(sb, loop + finds + "return {}");
  EXPECT_EQ(r.err.code, errc::program_error);
  EXPECT_EQ(r.err.message, "ran out of gas in string.find after 100000 instructions");
}

}  // namespace
}  // namespace esflow::runtime
