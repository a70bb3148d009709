// Declarative program tests (STYLE.md #13): tests/runtime/cases/*.case.
//
// Format: '#' starts a comment line; blank lines separate nothing in
// particular. Each directive is one line, "<keyword> <rest>":
//   program <file>        program for the cases that follow (relative to pipelines/programs)
//   case <name>           starts a case (fresh initial state)
//   given <event json>    an event already in the stream (applied to the state)
//   command <json>        the command under test
//   event <json>          an expected event payload, in order (compared as text
//                         after normalising through the encoder: key order does not matter)
//   no_events             the command is accepted with no events
//   reject <code> [msg]   the command is rejected with code (and exactly msg, when given)
//   state <json>          the state after given + the emitted events (normalised the same way)
// A case ends at the next "case" or the end of the file.
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

namespace esflow::runtime {
namespace {

struct test_case {
  std::string file;
  int line = 0;
  std::string program;
  std::string name;
  std::vector<std::string> given;
  std::string command;
  std::vector<std::string> events;
  bool no_events = false;
  std::optional<std::string> reject_code;
  std::optional<std::string> reject_message;
  std::optional<std::string> state;
};

std::vector<test_case> parse_file(const std::filesystem::path& path, std::vector<std::string>& problems) {
  std::vector<test_case> out;
  std::ifstream in(path);
  std::string line;
  std::string program;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    auto space = line.find(' ');
    std::string key = line.substr(0, space);
    std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    auto where = path.filename().string() + ":" + std::to_string(number);
    if (key == "program") {
      program = rest;
      continue;
    }
    if (key == "case") {
      test_case c;
      c.file = path.filename().string();
      c.line = number;
      c.program = program;
      c.name = rest;
      out.push_back(std::move(c));
      continue;
    }
    if (out.empty()) {
      problems.push_back(where + ": '" + key + "' before any case");
      continue;
    }
    test_case& c = out.back();
    if (key == "given") {
      c.given.push_back(rest);
    } else if (key == "command") {
      c.command = rest;
    } else if (key == "event") {
      c.events.push_back(rest);
    } else if (key == "no_events") {
      c.no_events = true;
    } else if (key == "reject") {
      auto sp = rest.find(' ');
      c.reject_code = rest.substr(0, sp);
      if (sp != std::string::npos) c.reject_message = rest.substr(sp + 1);
    } else if (key == "state") {
      c.state = rest;
    } else {
      problems.push_back(where + ": unknown directive '" + key + "'");
    }
  }
  return out;
}

std::vector<std::filesystem::path> case_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(ESFLOW_SOURCE_DIR) + "/tests/runtime/cases")) {
    if (entry.path().extension() == ".case") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Re-encodes an object through the sandbox so expected text need not be sorted.
std::string normalise(sandbox& sb, const std::string& json) {
  auto st = sb.state_from_json(json);
  if (!st) return "UNPARSABLE " + json;
  return *sb.state_to_json(*st);
}

void run_case(const test_case& c, program_cache& programs) {
  SCOPED_TRACE(c.file + ":" + std::to_string(c.line) + " case " + c.name);
  ASSERT_FALSE(c.program.empty()) << "no 'program' line";
  ASSERT_FALSE(c.command.empty()) << "no 'command' line";
  ASSERT_TRUE(c.reject_code.has_value() || c.no_events || !c.events.empty())
      << "a case needs 'event', 'no_events' or 'reject'";
  auto prog = programs.get(testing::programs_dir() + "/" + c.program);
  ASSERT_TRUE(prog.ok()) << prog.err().to_string();
  sandbox sb;
  auto st = sb.initial_state(**prog);
  ASSERT_TRUE(st.ok()) << st.err().to_string();
  for (const auto& g : c.given) {
    auto ok = sb.apply(**prog, *st, g);
    ASSERT_TRUE(ok.ok()) << "given " << g << ": " << ok.err().to_string();
  }
  auto d = sb.decide(**prog, *st, c.command);
  if (c.reject_code) {
    ASSERT_FALSE(d.ok()) << "expected rejection " << *c.reject_code;
    EXPECT_EQ(d.err().code, errc::domain_rejection) << d.err().to_string();
    EXPECT_EQ(d.err().code_text, *c.reject_code);
    if (c.reject_message) {
      EXPECT_EQ(d.err().message, *c.reject_message);
    }
  } else {
    ASSERT_TRUE(d.ok()) << d.err().to_string();
    ASSERT_EQ(d->size(), c.events.size());
    for (std::size_t i = 0; i < c.events.size(); ++i) {
      EXPECT_EQ((*d)[i].payload_json, normalise(sb, c.events[i])) << "event " << i + 1;
      auto ok = sb.apply(**prog, *st, (*d)[i].payload_json);
      ASSERT_TRUE(ok.ok()) << ok.err().to_string();
    }
  }
  if (c.state) {
    EXPECT_EQ(*sb.state_to_json(*st), normalise(sb, *c.state));
  }
}

TEST(program_cases, all_case_files_pass) {
  auto files = case_files();
  ASSERT_FALSE(files.empty());
  program_cache programs;
  std::size_t total = 0;
  for (const auto& f : files) {
    std::vector<std::string> problems;
    auto cases = parse_file(f, problems);
    for (const auto& p : problems) ADD_FAILURE() << p;
    EXPECT_FALSE(cases.empty()) << f;
    for (const auto& c : cases) run_case(c, programs);
    total += cases.size();
  }
  RecordProperty("cases", static_cast<int>(total));
  std::printf("ran %zu program cases from %zu files\n", total, files.size());
}

}  // namespace
}  // namespace esflow::runtime
