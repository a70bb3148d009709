// JSON <-> Lua without loss, and deterministic encoding.
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>

namespace esflow::runtime {
namespace {

using testing::decide_one;
using testing::make_program;

std::string round_trip(sandbox& sb, std::string_view json) {
  auto st = sb.state_from_json(json);
  if (!st) return "ERROR " + st.err().to_string();
  auto out = sb.state_to_json(*st);
  if (!out) return "ERROR " + out.err().to_string();
  return *out;
}

class json_round_trip : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(json_round_trip, keeps_value) {
  sandbox sb;
  auto [in, expected] = GetParam();
  EXPECT_EQ(round_trip(sb, in), expected);
  // And the output reads back to itself.
  EXPECT_EQ(round_trip(sb, expected), expected);
}

INSTANTIATE_TEST_SUITE_P(
    cases, json_round_trip,
    ::testing::Values(
        std::pair{R"({"v":9007199254740992})", R"({"v":9007199254740992})"},
        std::pair{R"({"v":9007199254740993})", R"({"v":9007199254740993})"},
        std::pair{R"({"v":-9007199254740992})", R"({"v":-9007199254740992})"},
        std::pair{R"({"v":9223372036854775807})", R"({"v":9223372036854775807})"},
        std::pair{R"({"v":-9223372036854775808})", R"({"v":-9223372036854775808})"},
        std::pair{R"({"v":0,"w":-0})", R"({"v":0,"w":0})"}, std::pair{R"({"v":1.5})", R"({"v":1.5})"},
        std::pair{R"({"v":2.0})", R"({"v":2.0})"}, std::pair{R"({"v":-0.0})", R"({"v":-0.0})"},
        std::pair{R"({"v":1e300})", R"({"v":1e+300})"}, std::pair{R"({"v":0.1})", R"({"v":0.1})"},
        std::pair{R"({"v":5e-324})", R"({"v":5e-324})"}, std::pair{R"({"v":1E2})", R"({"v":100.0})"},
        std::pair{R"({"a":[],"o":{}})", R"({"a":[],"o":{}})"},
        std::pair{R"({"n":{"a":[1,[],{},[[]],{"b":{"c":[true,false,null]}}]}})",
                  R"({"n":{"a":[1,[],{},[[]],{"b":{"c":[true,false,null]}}]}})"},
        std::pair{R"({"z":1,"a":2,"m":{"y":1,"b":2}})", R"({"a":2,"m":{"b":2,"y":1},"z":1})"},
        std::pair{R"({"s":"q\"b\\c/d\n\r\t\b\f\u0001\u001f\u007f"})",
                  R"({"s":"q\"b\\c/d\n\r\t\b\f\u0001\u001f)"
                  "\x7f"
                  R"("})"},
        std::pair{R"({"s":"\u00e9\u4e2d\ud83d\ude00"})", "{\"s\":\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"}"},
        std::pair{R"({"s":"a\u0000b"})", R"({"s":"a\u0000b"})"},
        std::pair{R"({"a\"k\u0000":1,"":2})", R"({"":2,"a\"k\u0000":1})"},
        std::pair{R"({"dup":1,"dup":2})", R"({"dup":2})"},
        std::pair{R"({"a":[null,null]})", R"({"a":[null,null]})"}));

TEST(json, lua_sees_integers_floats_and_arrays) {
  sandbox sb;
  auto p = make_program(
      "function decide(state, c)\n"
      "  return {{type = 'r',\n"
      "    big = math.type(c.big), neg = math.type(c.neg), max = math.type(c.max), f = math.type(c.f),\n"
      "    two = math.type(c.two), exact = c.big + 1 == 9007199254740993, nul = c.nul == null,\n"
      "    arr = getmetatable(c.arr), obj = tostring(getmetatable(c.obj)), n = #c.arr,\n"
      "    s = c.s, len = #c.s}}\n"
      "end\n");
  EXPECT_EQ(decide_one(sb, *p,
                       R"({"big":9007199254740992,"neg":-9007199254740992,"max":9223372036854775807,"f":1.5,)"
                       R"("two":2.0,"nul":null,"arr":[1,2,3],"obj":{},"s":"a\u0000b"})"),
            R"({"arr":"array","big":"integer","exact":true,"f":"float","len":3,"max":"integer","n":3,)"
            R"("neg":"integer","nul":true,"obj":"nil","s":"a\u0000b","two":"float","type":"r"})");
}

TEST(json, plain_lua_tables_encode_by_their_keys) {
  sandbox sb;
  auto p = make_program(
      "function decide()\n"
      "  return {{type = 'r', list = {1, 'two', 3.5}, empty = {}, marked = array(), filled = array({1}),\n"
      "           int_float = 3 // 1, float = 3 / 1, huge = math.maxinteger, tiny = math.mininteger}}\n"
      "end\n");
  EXPECT_EQ(
      decide_one(sb, *p),
      R"({"empty":{},"filled":[1],"float":3.0,"huge":9223372036854775807,"int_float":3,"list":[1,"two",3.5],)"
      R"("marked":[],"tiny":-9223372036854775808,"type":"r"})");
}

TEST(json, state_must_be_an_object) {
  sandbox sb;
  for (const char* bad : {"[]", "1", "\"s\"", "null"}) {
    auto st = sb.state_from_json(bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.err().code, errc::invalid_command);
    EXPECT_EQ(st.err().message, "state must be a JSON object");
  }
  auto broken = sb.state_from_json("{");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.err().code, errc::invalid_command);
}

TEST(json, encoding_is_deterministic_across_runs_and_vms) {
  // Keys inserted in different orders, in different VMs (string hashes are
  // seeded per VM), must give identical text.
  auto forward = make_program(
      "function decide()\n"
      "  local e = {type = 'r'}\n"
      "  for i = 1, 200 do e['k' .. i] = i end\n"
      "  return {e}\n"
      "end\n");
  auto backward = make_program(
      "function decide()\n"
      "  local e = {}\n"
      "  for i = 200, 1, -1 do e['k' .. i] = i end\n"
      "  e.type = 'r'\n"
      "  return {e}\n"
      "end\n",
      "/programs/other.lua");
  sandbox a;
  sandbox b;
  auto first = decide_one(a, *forward);
  EXPECT_EQ(first.rfind("{\"k1\":1,\"k10\":10,\"k100\":100,", 0), 0u) << first;
  EXPECT_EQ(decide_one(a, *forward), first);
  EXPECT_EQ(decide_one(b, *backward), first);

  auto st = a.state_from_json(R"({"z":[1,{"b":1,"a":2}],"y":"x","a":{}})");
  ASSERT_TRUE(st.ok());
  auto once = a.state_to_json(*st);
  auto twice = a.state_to_json(*st);
  ASSERT_TRUE(once.ok());
  EXPECT_EQ(*once, *twice);
  EXPECT_EQ(*once, R"({"a":{},"y":"x","z":[1,{"a":2,"b":1}]})");
}

}  // namespace
}  // namespace esflow::runtime
