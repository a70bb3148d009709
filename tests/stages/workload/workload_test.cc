// source.workload and the bank workload behind it (stages/bank_workload.h):
// the generator's sequence, the JSONL reader, and commands that pass
// tenant.gate and decode.command unchanged.
#include "cli/app.h"
#include "graph/node.h"
#include "stages/bank_workload.h"
#include "tests/graph/graph_test_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

namespace esflow::graph::testing {
namespace {

stages::bank_workload_options small() {
  stages::bank_workload_options o;
  o.seed = 42;
  o.commands = 600;
  o.accounts = 20;
  return o;
}

// Lines of the team's reference generator (its generate() with seed 42, 600
// run commands, 20 accounts): the same seed names the same commands.
TEST(bank_workload, generates_the_reference_sequence) {
  const auto w = stages::generate_bank_workload(small());
  ASSERT_EQ(w.size(), 620U);
  EXPECT_EQ(
      stages::workload_line(w[0]),
      R"({"phase":"setup","seq":0,"command_id":"d862bff7-1982-4676-b85a-18ca84483086","tenant":"tenant-0",)"
      R"("account_id":"acc-00000","type":"open_account","data":{"initial_balance":0}})");
  EXPECT_EQ(
      stages::workload_line(w[20]),
      R"({"phase":"run","seq":0,"command_id":"503117f9-b4dd-4ce9-ab86-7f2a8264b054","tenant":"tenant-2",)"
      R"("account_id":"acc-00010","type":"deposit","data":{"amount":6}})");
  EXPECT_EQ(
      stages::workload_line(w[359]),
      R"({"phase":"run","seq":339,"command_id":"dbaf1801-1c94-4f14-beb2-4ce23fcdcc82","tenant":"tenant-3",)"
      R"("account_id":"acc-00007","type":"deposit","data":{"amount":68},"duplicate_of":30})");
  EXPECT_EQ(
      stages::workload_line(w[619]),
      R"({"phase":"run","seq":599,"command_id":"8bc856fe-8ad3-462d-8d62-d4781393d04f","tenant":"tenant-3",)"
      R"("account_id":"acc-00003","type":"deposit","data":{"amount":15}})");
  std::map<std::string, int> types;
  int duplicates = 0;
  for (const auto& c : w) {
    ++types[c.type];
    if (c.duplicate_of >= 0) {
      ++duplicates;
      EXPECT_EQ(c.command_id, w[20 + static_cast<std::size_t>(c.duplicate_of)].command_id);
    }
  }
  EXPECT_EQ(duplicates, 4);
  EXPECT_EQ(types["open_account"], 20);
  EXPECT_EQ(types["withdraw"], 186);
  EXPECT_EQ(types["deposit"], 600 - 186);
}

TEST(bank_workload, command_body_is_an_envelope_with_the_tenant_only_when_multi_tenant) {
  const auto w = stages::generate_bank_workload(small());
  EXPECT_EQ(
      nlohmann::json::parse(stages::command_body(w[20], true)),
      nlohmann::json::parse(R"({"tenant_id":"tenant-2","command_id":"503117f9-b4dd-4ce9-ab86-7f2a8264b054",)"
                            R"("aggregate_type":"Account","aggregate_id":"acc-00010",)"
                            R"("payload":{"type":"deposit","amount":6}})"));
  EXPECT_FALSE(nlohmann::json::parse(stages::command_body(w[20], false)).contains("tenant_id"));
}

TEST(bank_workload, reads_records_and_envelopes_and_skips_the_sample_line) {
  temp_dir dir;
  const auto f = dir.write(
      "w.jsonl",
      R"({"phase":"setup","seq":0,"command_id":"c-1","tenant":"t1","account_id":"a-1","type":"open_account","data":{"initial_balance":0}})"
      "\n\n"
      R"({"tenant_id":"t2","aggregate_type":"Account","aggregate_id":"a-2","payload":{"type":"open_account","initial_balance":5}})"
      "\n"
      R"({"phase":"sample","accounts":[{"tenant":"t1","account_id":"a-1"}]})"
      "\n");
  auto items = stages::read_workload_file(f, true);
  ASSERT_TRUE(items.ok()) << items.err().to_string();
  ASSERT_EQ(items->size(), 2U);
  EXPECT_EQ((*items)[0].tenant, "t1");
  EXPECT_EQ(nlohmann::json::parse((*items)[0].body).at("aggregate_id"), "a-1");
  EXPECT_EQ((*items)[1].tenant, "t2");
  EXPECT_EQ(nlohmann::json::parse((*items)[1].body).at("payload").at("initial_balance"), 5);
}

TEST(bank_workload, a_malformed_line_is_named_by_file_and_line) {
  temp_dir dir;
  const auto f = dir.write("bad.jsonl",
                           R"({"aggregate_type":"Account","aggregate_id":"a-1","payload":{"type":"deposit"}})"
                           "\n"
                           R"({"phase":"run","seq":1,"command_id":"c-2")"
                           "\n");
  auto items = stages::read_workload_file(f, true);
  ASSERT_FALSE(items.ok());
  EXPECT_EQ(items.err().message,
            f + ":2: not a JSON object (a workload record or a command envelope per line)");
  const auto g = dir.write("fields.jsonl", R"({"phase":"run","seq":1,"tenant":"t1"})"
                                           "\n");
  auto missing = stages::read_workload_file(g, true);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().message.rfind(g + ":1: workload record: ", 0), 0U) << missing.err().message;
}

// The stages the HTTP and NATS ingest feed, fed by the workload instead.
std::string pipeline(const std::string& source) {
  return "pipeline: w\n"
         "stages:\n"
         "  src: { kind: source.workload, " +
         source +
         " }\n"
         "  tenant: { kind: tenant.gate }\n"
         "  decode: { kind: decode.command }\n"
         "  out: { kind: sink.null }\n"
         "  errors: { kind: sink.null }\n"
         "flow:\n"
         "  - src -> tenant -> decode -> out\n"
         "  - \"*.error -> errors\"\n";
}

TEST(source_workload, generated_commands_pass_tenant_gate_and_decode_command) {
  temp_dir dir;
  const auto f = dir.write("w.yaml", pipeline("commands: 600, accounts: 20"));
  cli::serve_options so;
  so.overrides.data_dir = dir.file("data");
  auto served = cli::serve_nodes({f}, so);
  ASSERT_TRUE(served.ok()) << served.err().to_string();
  auto& n = *cli::served_host(*served.value()).nodes().front();
  ASSERT_TRUE(n.wait_finished(deadline_in(std::chrono::seconds(30))));
  std::map<std::string, stage_stats::totals> by_stage;
  for (const auto& rt : n.stages()) by_stage.emplace(rt->name(), rt->stats().read());
  EXPECT_EQ(by_stage.at("src").out, 620U);
  EXPECT_EQ(by_stage.at("decode").errors, 0U);
  EXPECT_EQ(by_stage.at("out").in, 620U);
  EXPECT_EQ(by_stage.at("errors").in, 0U);
}

TEST(source_workload, a_malformed_file_fails_the_build_naming_file_and_line) {
  temp_dir dir;
  dir.write("bad.jsonl", "{\"aggregate_type\":\"Account\"}\nnot json\n");
  const auto f = dir.write("w.yaml", pipeline("file: bad.jsonl"));
  cli::serve_options so;
  so.overrides.data_dir = dir.file("data");
  auto served = cli::serve_nodes({f}, so);
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.err().message,
            f + ":3: stage 'src' (source.workload): " + dir.file("bad.jsonl") +
                ":2: not a JSON object (a workload record or a command envelope per line)");
}

}  // namespace
}  // namespace esflow::graph::testing
