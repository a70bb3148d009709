// The projection's parts on their own: the order of index encodings, the
// position tracker's watermark and rewinds, row values, the `views:` checks
// with file:line, and the sandbox's project(row, event).
#include "runtime/sandbox.h"
#include "stages/position_tracker.h"
#include "stages/projection/row_index.h"
#include "stages/projection/row_value.h"
#include "stages/projection/view_spec.h"
#include "storage/index_value.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

#include <random>

namespace esflow::projection {
namespace {

namespace iv = storage::index_value;

TEST(index_value, byte_order_is_value_order_within_a_type_and_types_never_interleave) {
  std::vector<double> numbers = {-1e300, -5, -1.5, -0.0, 0, 1e-9, 1, 2, 2.5, 1e15, 9007199254740993.0, 1e300};
  for (std::size_t i = 1; i < numbers.size(); ++i) {
    if (numbers[i - 1] == numbers[i]) {
      EXPECT_EQ(iv::of_number(numbers[i - 1]), iv::of_number(numbers[i]));
    } else {
      EXPECT_LT(iv::of_number(numbers[i - 1]), iv::of_number(numbers[i]))
          << numbers[i - 1] << " " << numbers[i];
    }
  }
  std::vector<std::string> strings = {
      "", std::string("\0", 1), std::string("\0\0", 2), "a", std::string("a\0", 2), "ab", "b", "\xff"};
  for (std::size_t i = 1; i < strings.size(); ++i)
    EXPECT_LT(iv::of_string(strings[i - 1]), iv::of_string(strings[i])) << i;
  EXPECT_LT(iv::of_absent(), iv::of_bool(false));
  EXPECT_LT(iv::of_bool(false), iv::of_bool(true));
  EXPECT_LT(iv::of_bool(true), iv::of_number(-1e300));
  EXPECT_LT(iv::of_number(1e300), iv::of_string(""));
  EXPECT_LE(iv::of_string("\xff\xff"), iv::type_end(iv::string));
  // Self-delimiting: the length is found whatever follows.
  for (const auto& s : strings) {
    auto enc = iv::of_string(s);
    EXPECT_EQ(iv::length_of(enc + "tail"), enc.size());
  }
  EXPECT_EQ(iv::length_of(iv::of_number(3) + "x"), 9U);
  EXPECT_FALSE(
      iv::length_of(std::string("\x04"
                                "abc",
                                4)));
  EXPECT_FALSE(iv::length_of(""));
}

TEST(row_index, entries_follow_paths_and_absent_values_sort_first) {
  auto row = nlohmann::json::parse(R"({"balance":5,"owner":{"name":"x"},"tags":[1],"n":null})");
  EXPECT_EQ(index_entry(row, "balance"), iv::of_number(5));
  EXPECT_EQ(index_entry(row, "owner.name"), iv::of_string("x"));
  EXPECT_EQ(index_entry(row, "owner.missing"), iv::of_absent());
  EXPECT_EQ(index_entry(row, "tags"), iv::of_absent());
  EXPECT_EQ(index_entry(row, "n"), iv::of_absent());
  EXPECT_EQ(index_entry(row, "balance.deeper"), iv::of_absent());
}

TEST(row_value, round_trips_and_refuses_other_bytes) {
  row_value r{7, 123456789, false, R"({"a":1})"};
  auto back = decode_row(encode_row(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->version, 7U);
  EXPECT_EQ(back->position, 123456789U);
  EXPECT_EQ(back->json, r.json);
  row_value gone{8, 9, true, {}};
  back = decode_row(encode_row(gone));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->deleted);
  EXPECT_FALSE(decode_row(R"({"a":1})"));
  EXPECT_FALSE(decode_row(""));
}

TEST(position_tracker, watermark_waits_for_the_oldest_in_flight_commit) {
  stages::position_tracker t;
  t.reset(10);
  EXPECT_EQ(t.watermark(), 10U);
  for (auto p : {12, 15, 20}) {
    t.begin(p);
    t.passed(p);
  }
  t.passed(25);  // commits no view follows
  EXPECT_EQ(t.watermark(), 11U);
  EXPECT_EQ(t.watermark_with(12), 14U);
  t.done(15);
  EXPECT_EQ(t.watermark(), 11U);
  t.done(12);
  EXPECT_EQ(t.watermark(), 19U);
  t.done(20);
  EXPECT_EQ(t.watermark(), 25U);
  EXPECT_TRUE(t.wait_for(25, std::chrono::steady_clock::now()));
  EXPECT_FALSE(t.wait_for(26, std::chrono::steady_clock::now() + std::chrono::milliseconds(5)));
}

TEST(position_tracker, a_failure_holds_the_watermark_and_rewinds_once_nothing_is_in_flight) {
  stages::position_tracker t;
  t.reset(0);
  for (auto p : {1, 2, 3}) {
    t.begin(p);
    t.passed(p);
  }
  t.done(1);
  t.failed(2);
  EXPECT_FALSE(t.take_rewind());  // 3 is still in flight
  t.done(3);
  EXPECT_EQ(t.watermark(), 1U);
  auto from = t.take_rewind();
  ASSERT_TRUE(from);
  EXPECT_EQ(*from, 1U);
  EXPECT_FALSE(t.take_rewind());
  EXPECT_EQ(t.watermark(), 1U);
}

class view_spec_test : public ::testing::Test {
 protected:
  result<std::vector<view_config>> parse(const std::string& yaml) {
    runtime::program_cache programs;
    return parse_views(YAML::Load(yaml)["views"], "p.yaml", dir.path().string(), programs);
  }
  storage::testing::temp_dir dir;
};

TEST_F(view_spec_test, every_problem_is_named_with_its_line) {
  dir.write("ok.lua", "function project(row, event) return row or {} end");
  dir.write("noproject.lua", "function apply(s, e) return s end");
  dir.write("broken.lua", "function project(row, event) return end end");
  auto r = parse(
      "views:\n"
      "  Bad-Name: { from: [Account], program: ok.lua }\n"
      "  a: { from: [Account], program: ok.lua, colour: red }\n"
      "  b: { program: ok.lua }\n"
      "  c: { from: [Account] }\n"
      "  d: { from: [Account, Other], apply: ok.lua }\n"
      "  e: { from: [Account], program: missing.lua }\n"
      "  f: { from: [Account], program: noproject.lua }\n"
      "  g: { from: [Account], program: broken.lua }\n"
      "  h: { from: [Account], program: ok.lua, index: [key] }\n"
      "  i: { from: [1Account], program: ok.lua }\n");
  ASSERT_FALSE(r.ok());
  const auto& m = r.err().message;
  for (const auto& needle :
       {"p.yaml:2: views: 'Bad-Name': a view name", "p.yaml:3: views: 'a': unknown key 'colour'",
        "p.yaml:4: views: 'b': missing 'from'", "p.yaml:5: views: 'c': needs exactly one of",
        "p.yaml:6: views: 'd': 'apply' folds one aggregate type",
        "p.yaml:7: views: 'e':", "p.yaml:8: views: 'f':", "defines no project(row, event)",
        "p.yaml:9: views: 'g':", "p.yaml:10: views: 'h': index field 'key'",
        "p.yaml:11: views: 'i': '1Account'"})
    EXPECT_NE(m.find(needle), std::string::npos) << needle << "\n" << m;
  auto good = parse("views:\n  v: { from: Account, program: ok.lua, index: [a.b, c] }\n");
  ASSERT_TRUE(good.ok()) << good.err().to_string();
  EXPECT_EQ(good->at(0).from, std::vector<std::string>{"Account"});
  EXPECT_EQ(good->at(0).index, (std::vector<std::string>{"a.b", "c"}));
}

TEST(sandbox_project, folds_rows_deletes_with_nil_and_contains_hostile_programs) {
  runtime::program_cache programs;
  auto p = programs.put("v", "v.lua",
                        "function project(row, event)\n"
                        "  if event.event_type == 'gone' then return nil end\n"
                        "  if event.event_type == 'spin' then while true do end end\n"
                        "  if event.event_type == 'bad' then return 5 end\n"
                        "  if event.event_type == 'boom' then error('no') end\n"
                        "  local r = row or {n = 0}\n"
                        "  r.n = r.n + 1\n"
                        "  return r\n"
                        "end\n");
  ASSERT_TRUE(p.ok());
  runtime::sandbox sb(runtime::sandbox_options{100000, 16 << 20});
  runtime::state_handle row;
  ASSERT_TRUE(sb.project(*p.value(), row, R"({"event_type":"x"})").ok());
  ASSERT_TRUE(sb.project(*p.value(), row, R"({"event_type":"x"})").ok());
  ASSERT_TRUE(row.valid());
  EXPECT_EQ(sb.state_to_json(row).value(), R"({"n":2})");
  for (const char* hostile :
       {R"({"event_type":"spin"})", R"({"event_type":"bad"})", R"({"event_type":"boom"})", "not json"}) {
    auto st = sb.project(*p.value(), row, hostile);
    EXPECT_FALSE(st.ok()) << hostile;
    ASSERT_TRUE(row.valid()) << hostile;
    EXPECT_EQ(sb.state_to_json(row).value(), R"({"n":2})") << hostile << ": the row is as it was";
  }
  ASSERT_TRUE(sb.project(*p.value(), row, R"({"event_type":"gone"})").ok());
  EXPECT_FALSE(row.valid());
}

}  // namespace
}  // namespace esflow::projection
