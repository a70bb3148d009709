// Recovery: a node closed (storage and all) and started again on the same data
// directory continues where the log ends — in process, and as a real `esflow
// run` child process run twice on one data dir.
#include "tests/stages/aggregate/harness.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sys/wait.h>

namespace esflow::aggregate::testing {
namespace {

TEST(aggregate_restart, versions_continue_after_the_node_and_storage_reopen) {
  harness h;
  node_options o;
  o.durability = "fsync";
  o.snapshot_every = 2;
  auto first = h.run({{account_cmd("r", R"({"type":"open_account","initial_balance":1})")},
                      {account_cmd("r", R"({"type":"deposit","amount":1})")},
                      {account_cmd("r", R"({"type":"deposit","amount":1})")}},
                     o);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[2].result.version, 3u);
  auto second = h.run({{account_cmd("r", R"({"type":"withdraw","amount":3})")},
                       {account_cmd("r", R"({"type":"close_account"})")},
                       {account_cmd("r", R"({"type":"deposit","amount":1})")}},
                      o);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_TRUE(second[0].accepted) << second[0].json;
  EXPECT_EQ(second[0].result.version, 4u);
  EXPECT_EQ(second[1].result.version, 5u);
  EXPECT_EQ(second[2].code, "account_not_open");
  auto s = h.open_service(o);
  auto events = s->log().read("acme", "Account", "r", 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ((*events)[i].version, i + 1);
}

int run_child(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(aggregate_restart, esflow_run_twice_on_one_data_dir_continues_versions) {
  const std::string binary = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  ASSERT_TRUE(std::filesystem::exists(binary)) << binary << " not built (the test depends on it)";
  harness h;
  const auto pipeline = h.dir() + "/run.yaml";
  const auto input = h.dir() + "/in.ndjson";
  const auto results = h.dir() + "/results.ndjson";
  {
    std::ofstream p(pipeline);
    p << "pipeline: restart\n"
      << "settings: { data_dir: " << h.data_dir() << ", durability: fsync, http: \"127.0.0.1:0\" }\n"
      << "aggregates:\n  Account: { program: " << account_program() << ", snapshot_every: 2 }\n"
      << "stages:\n"
      << "  source: { kind: source.file, path: in.ndjson }\n"
      << "  tenant: { kind: tenant.gate }\n"
      << "  decode: { kind: decode.command }\n"
      << "  rehydrate: { kind: aggregate.rehydrate, key: message, concurrency: 2 }\n"
      << "  decide: { kind: aggregate.decide, key: message, concurrency: 2 }\n"
      << "  commit: { kind: aggregate.commit, key: message }\n"
      << "  publish: { kind: publish, concurrency: serial }\n"
      << "  results: { kind: sink.file, path: results.ndjson, append: true }\n"
      << "flow:\n  - source -> tenant -> decode -> rehydrate -> decide -> commit -> publish -> results\n"
      << "  - \"*.error -> publish\"\n";
  }
  auto write_input = [&](int from, int count) {
    std::ofstream f(input, std::ios::trunc);
    for (int i = from; i < from + count; ++i) {
      const std::string payload =
          i == 0 ? R"({"type":"open_account","initial_balance":0})" : R"({"type":"deposit","amount":1})";
      f << R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"proc","command_id":"c)" << i
        << R"(","payload":)" << payload << "}\n";
    }
  };
  const auto log_path = h.dir() + "/out.log";
  const auto cmd = binary + " run " + pipeline + " >> " + log_path + " 2>&1";
  // On failure, show what the child said: the rare failure seen once gave no clue.
  auto child_log = [&] {
    std::ifstream in(log_path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  write_input(0, 5);
  ASSERT_EQ(run_child(cmd), 0) << child_log();
  write_input(3, 5);  // c3, c4 again (duplicates), then c5..c7
  ASSERT_EQ(run_child(cmd), 0) << child_log();
  std::ifstream r(results);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(r, line) && lines.size() < 20;)
    lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 10u) << child_log();
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(lines[i]["status"], "accepted") << lines[i].dump();
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(lines[i]["version"], i + 1);
  EXPECT_EQ(lines[5]["version"], 4);
  EXPECT_EQ(lines[5]["duplicate"], true);
  EXPECT_EQ(lines[6]["version"], 5);
  EXPECT_EQ(lines[6]["duplicate"], true);
  for (std::size_t i = 7; i < 10; ++i) EXPECT_EQ(lines[i]["version"], i - 1);
  auto s = h.open_service();
  auto events = s->log().read("acme", "Account", "proc", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 8u) << child_log();
}

}  // namespace
}  // namespace esflow::aggregate::testing
