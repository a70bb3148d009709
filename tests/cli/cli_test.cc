// The esflow commands in-process (validate, graph, stages, bench) and the real
// binary for its exit codes.
#include "cli/app.h"
#include "stages/bank_workload.h"
#include "tests/graph/graph_test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace esflow::graph::testing {
namespace {

const char* k_good =
    "pipeline: small\n"
    "stages:\n"
    "  gen: {kind: source.generator, count: 500}\n"
    "  tag: {kind: json.set, field: seen, value: 'true'}\n"
    "  out: {kind: sink.null}\n"
    "flow:\n"
    "  - gen -> tag -> out\n";

const char* k_bad =
    "pipeline: broken\n"
    "stages:\n"
    "  gen: {kind: source.generator}\n"
    "  out: {kind: sink.nul}\n"
    "flow:\n"
    "  - gen -> out\n";

class cli_test : public ::testing::Test {
 protected:
  temp_dir dir;
};

TEST_F(cli_test, validate_returns_0_and_summarises_a_good_file) {
  const auto f = dir.write("good.yaml", k_good);
  std::ostringstream out, err;
  EXPECT_EQ(cli::validate_command({f}, out, err), cli::k_ok);
  EXPECT_EQ(out.str(), f + ": ok (pipeline 'small', 3 stages, 2 edges)\n");
  EXPECT_EQ(err.str(), "");
}

TEST_F(cli_test, validate_returns_2_with_file_and_line_for_a_bad_file) {
  const auto good = dir.write("good.yaml", k_good);
  const auto bad = dir.write("bad.yaml", k_bad);
  std::ostringstream out, err;
  EXPECT_EQ(cli::validate_command({bad, good}, out, err), cli::k_usage);
  EXPECT_EQ(err.str(), bad + ":4: stage 'out': unknown kind 'sink.nul' (did you mean 'sink.null'?)\n");
  EXPECT_EQ(out.str(),
            good + ": ok (pipeline 'small', 3 stages, 2 edges)\n");  // the others are still checked
}

TEST_F(cli_test, validate_returns_2_for_a_missing_file) {
  std::ostringstream out, err;
  EXPECT_EQ(cli::validate_command({dir.file("absent.yaml")}, out, err), cli::k_usage);
  EXPECT_EQ(err.str(), "cannot read pipeline file '" + dir.file("absent.yaml") + "'\n");
}

TEST_F(cli_test, graph_prints_dot_mermaid_and_json) {
  const auto f = dir.write("good.yaml", k_good);
  std::ostringstream dot, mermaid, json, err;
  EXPECT_EQ(cli::graph_command(f, "dot", dot, err), cli::k_ok);
  EXPECT_EQ(dot.str().rfind("digraph \"small\" {", 0), 0u) << dot.str();
  EXPECT_NE(dot.str().find("\"gen\" -> \"tag\";"), std::string::npos);
  EXPECT_EQ(cli::graph_command(f, "mermaid", mermaid, err), cli::k_ok);
  EXPECT_EQ(mermaid.str().rfind("flowchart LR\n", 0), 0u);
  EXPECT_NE(mermaid.str().find("s0 --> s1"), std::string::npos) << mermaid.str();
  EXPECT_EQ(cli::graph_command(f, "json", json, err), cli::k_ok);
  auto j = nlohmann::json::parse(json.str(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.str();
  EXPECT_EQ(j.at("pipeline"), "small");
  EXPECT_EQ(j.at("stages").size(), 3u);
  EXPECT_EQ(j.at("edges").size(), 2u);
  EXPECT_EQ(err.str(), "");

  std::ostringstream none, bad_err;
  EXPECT_EQ(cli::graph_command(dir.write("bad.yaml", k_bad), "dot", none, bad_err), cli::k_usage);
  EXPECT_EQ(none.str(), "");
  EXPECT_NE(bad_err.str().find("bad.yaml:4: "), std::string::npos) << bad_err.str();
}

TEST_F(cli_test, stages_json_lists_every_kind_with_its_params) {
  std::ostringstream out;
  EXPECT_EQ(cli::stages_command("json", out), cli::k_ok);
  auto j = nlohmann::json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out.str();
  ASSERT_TRUE(j.is_array());
  std::set<std::string> kinds;
  for (const auto& k : j) {
    kinds.insert(k.at("kind").get<std::string>());
    EXPECT_TRUE(k.at("params").is_array()) << k.at("kind");
    EXPECT_TRUE(k.at("ports").is_array()) << k.at("kind");
    EXPECT_TRUE(k.at("description").is_string()) << k.at("kind");
    for (const auto& p : k.at("params")) {
      for (const char* key : {"name", "type", "required", "doc"})
        EXPECT_TRUE(p.contains(key)) << k.at("kind");
      EXPECT_EQ(p.at("required").get<bool>(), !p.contains("default")) << k.at("kind") << "." << p.at("name");
    }
  }
  std::set<std::string> registered;
  for (const auto* d : cli::builtin_registry().all()) registered.insert(d->kind);
  EXPECT_EQ(kinds, registered);
  for (const char* k : {"source.file", "source.generator", "sink.file", "sink.null", "sink.error_log",
                        "route", "noop", "json.set", "json.require", "delay"})
    EXPECT_TRUE(kinds.count(k)) << k;
  const auto gen =
      std::find_if(j.begin(), j.end(), [](const auto& k) { return k.at("kind") == "source.generator"; });
  ASSERT_NE(gen, j.end());
  EXPECT_EQ(gen->at("params").size(), 4u);
  EXPECT_EQ(gen->at("params")[0].at("name"), "count");
  EXPECT_EQ(gen->at("params")[0].at("default"), "1000");
}

TEST_F(cli_test, stages_text_names_every_kind) {
  std::ostringstream out;
  EXPECT_EQ(cli::stages_command("text", out), cli::k_ok);
  for (const auto* d : cli::builtin_registry().all())
    EXPECT_NE(out.str().find(d->kind + " ("), std::string::npos) << d->kind;
}

TEST_F(cli_test, bench_prints_a_row_per_stage) {
  const auto f = dir.write("good.yaml", k_good);
  std::ostringstream out, err;
  cli::bench_options opts;
  opts.messages = 2000;
  ASSERT_EQ(cli::bench_command(f, opts, out, err), cli::k_ok) << err.str();
  const auto lines = [&] {
    std::vector<std::string> v;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }();
  ASSERT_EQ(lines.size(), 5u) << out.str();  // title, header, 3 stages
  EXPECT_EQ(lines[0].rfind("pipeline 'small': ", 0), 0u);
  EXPECT_NE(lines[1].find("msgs/s"), std::string::npos);
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string stage[] = {"gen", "tag", "out"};
    EXPECT_EQ(lines[2 + i].rfind(stage[i] + " ", 0), 0u) << lines[2 + i];
    std::istringstream row(lines[2 + i]);
    std::string name, kind;
    double messages = -1;
    row >> name >> kind >> messages;
    EXPECT_EQ(messages, 2000) << lines[2 + i];
  }

  std::ostringstream json;
  opts.format = "json";
  opts.stage = "tag";
  ASSERT_EQ(cli::bench_command(f, opts, json, err), cli::k_ok) << err.str();
  auto j = nlohmann::json::parse(json.str());
  ASSERT_EQ(j.at("stages").size(), 1u);
  EXPECT_EQ(j.at("stages")[0].at("stage"), "tag");
  EXPECT_EQ(j.at("stages")[0].at("messages"), 2000);
}

// bench builds nodes through the same host as run and dev: a node kind's
// pipeline gets its data directory's store and event log.
TEST_F(cli_test, bench_drives_an_aggregate_pipeline) {
  std::string commands;
  for (int i = 0; i < 50; ++i)
    commands += R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"b-)" + std::to_string(i) +
                R"(","payload":{"type":"open_account","initial_balance":1}})" + "\n";
  dir.write("commands.ndjson", commands);
  const auto f =
      dir.write("agg.yaml",
                "pipeline: agg\n"
                "settings: { data_dir: " +
                    dir.file("data") +
                    ", durability: relaxed }\n"
                    "aggregates:\n"
                    "  Account: { program: " ESFLOW_SOURCE_DIR
                    "/pipelines/programs/account.lua }\n"
                    "stages:\n"
                    "  src: { kind: source.file, path: commands.ndjson }\n"
                    "  tenant: { kind: tenant.gate }\n"
                    "  decode: { kind: decode.command }\n"
                    "  rehydrate: { kind: aggregate.rehydrate, key: message }\n"
                    "  decide: { kind: aggregate.decide, key: message }\n"
                    "  commit: { kind: aggregate.commit, key: message }\n"
                    "  answer: { kind: aggregate.answer }\n"
                    "  out: { kind: sink.null }\n"
                    "flow:\n"
                    "  - src -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> out\n"
                    "  - \"*.error -> answer\"\n");
  std::ostringstream out, err;
  cli::bench_options opts;
  opts.format = "json";
  opts.stage = "commit";
  ASSERT_EQ(cli::bench_command(f, opts, out, err), cli::k_ok) << err.str();
  auto j = nlohmann::json::parse(out.str());
  ASSERT_EQ(j.at("stages").size(), 1u);
  EXPECT_EQ(j.at("stages")[0].at("messages"), 50);
  EXPECT_EQ(j.at("stages")[0].at("errors"), 0);
}

TEST_F(cli_test, bench_rejects_unknown_stage_with_2) {
  const auto f = dir.write("good.yaml", k_good);
  std::ostringstream out, err;
  cli::bench_options opts;
  opts.stage = "nope";
  EXPECT_EQ(cli::bench_command(f, opts, out, err), cli::k_usage);
  EXPECT_EQ(err.str(), "no stage named 'nope' in " + f + "\n");
}

// A paced generator bounds the run: bench says so before the figures instead
// of presenting the pace as the pipeline's throughput.
TEST_F(cli_test, bench_names_a_rate_limited_generator) {
  const auto f = dir.write("paced.yaml",
                           "pipeline: paced\n"
                           "stages:\n"
                           "  gen: { kind: source.generator, count: 40, rate: 1000 }\n"
                           "  fast: { kind: source.generator, count: 40 }\n"
                           "  out: { kind: sink.null }\n"
                           "flow:\n"
                           "  - gen -> out\n"
                           "  - fast -> out\n");
  std::ostringstream out, err;
  ASSERT_EQ(cli::bench_command(f, {}, out, err), cli::k_ok) << err.str();
  EXPECT_EQ(out.str().rfind("source 'gen' is rate-limited to 1000 msgs/s: figures below measure the limit, "
                            "not the pipeline\npipeline 'paced': ",
                            0),
            0U)
      << out.str();
  EXPECT_EQ(out.str().find("source 'fast'"), std::string::npos) << out.str();

  std::ostringstream json, json_err;
  cli::bench_options opts;
  opts.format = "json";
  ASSERT_EQ(cli::bench_command(f, opts, json, json_err), cli::k_ok) << json_err.str();
  EXPECT_EQ(nlohmann::json::parse(json.str()).at("notes"),
            nlohmann::json::array({"source 'gen' is rate-limited to 1000 msgs/s: figures below measure the "
                                   "limit, not the pipeline"}));
  EXPECT_NE(json_err.str().find("source 'gen' is rate-limited"), std::string::npos) << json_err.str();
}

// --- the real binary -------------------------------------------------------------

struct run_result {
  int code = -1;
  std::string out, err;
};

run_result run_esflow(const temp_dir& dir, const std::string& args) {
  const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  const auto out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
  // In the test's directory: whatever a command writes relative to its working directory stays there.
  const auto cmd = "cd " + dir.path().string() + " && timeout 30 " + bin + " " + args + " >" + out + " 2>" +
                   err + " </dev/null";
  const int status = std::system(cmd.c_str());
  run_result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// --- help: each text is its own command's ---------------------------------------------

struct help_text {
  std::string first_line, usage;                               // usage: from the command's name on
  std::vector<std::string> options, positionals, subcommands;  // names, in order
};

// Reads CLI11's help layout: a description, "Usage: <bin> <synopsis>", then
// sections whose entries start two spaces in.
help_text parse_help(const std::string& text) {
  help_text h;
  std::istringstream in(text);
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (h.first_line.empty() && !line.empty() && line.rfind("Usage: ", 0) != 0) h.first_line = line;
    if (line.rfind("Usage: ", 0) == 0) {
      const auto bin = line.find("esflow");
      h.usage = bin == std::string::npos ? line : line.substr(bin);
    } else if (!line.empty() && line.back() == ':' && line[0] != ' ') {
      section = line;
    } else if (line.size() > 2 && line.rfind("  ", 0) == 0 && line[2] != ' ') {
      auto name = line.substr(2, line.find(' ', 2) - 2);
      if (section == "Options:") h.options.push_back(name);
      if (section == "Positionals:") h.positionals.push_back(name);
      if (section == "Subcommands:") h.subcommands.push_back(name);
    }
  }
  return h;
}

TEST_F(cli_test, binary_help_lists_exactly_the_subcommands_and_global_options) {
  auto r = run_esflow(dir, "--help");
  EXPECT_EQ(r.code, 0) << r.err;
  const auto h = parse_help(r.out);
  EXPECT_EQ(h.first_line, "esflow: event-sourcing nodes built as flow graphs of declarative stages");
  EXPECT_EQ(h.usage, "esflow [OPTIONS] SUBCOMMAND");
  EXPECT_EQ(h.subcommands,
            (std::vector<std::string>{"run", "dev", "validate", "graph", "stages", "kinds", "placement",
                                      "views", "quarantine", "replay", "keys", "tenants", "bench", "load"}))
      << r.out;
  EXPECT_EQ(h.options, (std::vector<std::string>{"-h,--help", "--log-level", "--log-format"})) << r.out;
}

// --- --log-format / ESFLOW_LOG_FORMAT ------------------------------------------------

// A command path that logs an error for a message: tenant.gate refuses a
// tenant this node does not host, the error port is unconnected, so the
// runtime logs it (with the message's ids), then the file ends and run exits.
const char* k_gate =
    "pipeline: gate\n"
    "settings: {tenancy: multi}\n"
    "stages:\n"
    "  src: {kind: source.file, path: in.jsonl}\n"
    "  gate: {kind: tenant.gate, hosted: [acme]}\n"
    "  out: {kind: sink.null}\n"
    "flow:\n"
    "  - src -> gate -> out\n";

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

TEST_F(cli_test, binary_log_format_json_writes_every_line_as_json_with_the_command_ids) {
  dir.write("in.jsonl", "{\"tenant_id\":\"other\",\"x\":1}\n{\"tenant_id\":\"acme\",\"x\":2}\n");
  const auto f = dir.write("gate.yaml", k_gate);
  auto r = run_esflow(dir, "--log-format json run " + f + " --http 127.0.0.1:0 --data-dir data");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const auto lines = nonempty_lines(r.err);
  ASSERT_GE(lines.size(), 2u) << r.err;
  int refused = 0;
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    for (const char* key : {"time", "level", "module", "message", "source"})
      EXPECT_TRUE(j.contains(key) && j[key].is_string()) << key << " in " << line;
    if (j["message"].get<std::string>().find("tenant_not_hosted") == std::string::npos) continue;
    ++refused;
    EXPECT_EQ(j["level"], "warn");
    EXPECT_EQ(j["module"], "graph");
    EXPECT_EQ(j["tenant_id"], "other");
    EXPECT_FALSE(j.value("correlation_id", std::string()).empty()) << line;
    EXPECT_EQ(j.value("trace_id", std::string()).size(), 32u) << line;
  }
  EXPECT_EQ(refused, 1) << r.err;
}

TEST_F(cli_test, binary_log_format_comes_from_the_variable_and_the_flag_wins) {
  dir.write("in.jsonl", "{\"tenant_id\":\"other\"}\n");
  const auto f = dir.write("gate.yaml", k_gate);
  ::setenv("ESFLOW_LOG_FORMAT", "json", 1);
  auto by_env = run_esflow(dir, "run " + f + " --http 127.0.0.1:0 --data-dir data");
  auto by_flag = run_esflow(dir, "--log-format text run " + f + " --http 127.0.0.1:0 --data-dir data");
  ::unsetenv("ESFLOW_LOG_FORMAT");
  ASSERT_EQ(by_env.code, 0) << by_env.err;
  ASSERT_EQ(by_flag.code, 0) << by_flag.err;
  for (const auto& line : nonempty_lines(by_env.err))
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
  const auto text = nonempty_lines(by_flag.err);
  ASSERT_FALSE(text.empty());
  for (const auto& line : text) EXPECT_NE(line[0], '{') << line;  // the text format, unchanged
}

TEST_F(cli_test, binary_invalid_log_format_is_a_usage_error_naming_the_valid_values) {
  auto r = run_esflow(dir, "--log-format xml stages");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--log-format"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("{text,json}"), std::string::npos) << r.err;
  ::setenv("ESFLOW_LOG_FORMAT", "yaml", 1);
  auto env = run_esflow(dir, "stages");
  ::unsetenv("ESFLOW_LOG_FORMAT");
  EXPECT_EQ(env.code, 2) << env.out;
  EXPECT_NE(env.err.find("{text,json}"), std::string::npos) << env.err;
}

// Each subcommand's help is its own: its synopsis, its description (the one
// the top-level help lists for it) and exactly its options. Swapping two
// commands' help texts fails here, even between commands with the same options.
TEST_F(cli_test, binary_each_subcommand_help_shows_its_own_synopsis_and_options) {
  struct expected {
    std::string cmd, usage;
    std::vector<std::string> options, positionals;
  };
  const std::vector<expected> all = {
      {"run",
       "run [OPTIONS] files...",
       {"--http", "--grpc", "--data-dir", "--nats", "--nats-file", "--node-id", "--check"},
       {"files"}},
      {"dev",
       "dev [OPTIONS]",
       {"--http", "--grpc", "--data-dir", "--nats", "--nats-file", "--node-id", "--check"},
       {}},
      {"validate", "validate [OPTIONS] files...", {}, {"files"}},
      {"graph", "graph [OPTIONS] file", {"--format"}, {"file"}},
      {"stages", "stages [OPTIONS]", {"--format"}, {}},
      {"kinds", "kinds [OPTIONS]", {"--format"}, {}},
      {"placement", "placement [OPTIONS] SUBCOMMAND", {}, {}},
      {"views", "views [OPTIONS] SUBCOMMAND", {"--url"}, {}},
      {"quarantine", "quarantine [OPTIONS] SUBCOMMAND", {"--url"}, {}},
      {"replay", "replay [OPTIONS]", {"--url", "--saga", "--tenant", "--from", "--confirm"}, {}},
      {"keys", "keys [OPTIONS] SUBCOMMAND", {}, {}},
      {"bench",
       "bench [OPTIONS] file",
       {"--stage", "--messages", "--workload", "--commands", "--accounts", "--tenants", "--seed",
        "--data-dir", "--format"},
       {"file"}},
      {"load",
       "load [OPTIONS]",
       {"--transport",
        "--url",
        "--read-url",
        "--key",
        "--workload",
        "--commands",
        "--accounts",
        "--tenants",
        "--seed",
        "--clients",
        "--setup-clients",
        "--duration",
        "--max-commands",
        "--timeout-ms",
        "--unavailable-retries",
        "--no-verify",
        "--verify-accounts",
        "--progress",
        "--format",
        "--print-workload"},
       {}},
  };
  // The top-level help's description of each subcommand.
  std::map<std::string, std::string> described;
  {
    std::istringstream in(run_esflow(dir, "--help").out);
    for (std::string line; std::getline(in, line);)
      for (const auto& e : all)
        if (line.rfind("  " + e.cmd + " ", 0) == 0)
          described[e.cmd] = line.substr(line.find_first_not_of(' ', 2 + e.cmd.size()));
  }
  for (const auto& e : all) {
    auto r = run_esflow(dir, e.cmd + " --help");
    EXPECT_EQ(r.code, 0) << e.cmd << ": " << r.err;
    const auto h = parse_help(r.out);
    EXPECT_EQ(h.usage, "esflow " + e.usage) << r.out;
    EXPECT_EQ(h.first_line, described[e.cmd]) << e.cmd;
    auto options = e.options;
    options.insert(options.begin(), "-h,--help");
    EXPECT_EQ(h.options, options) << r.out;
    EXPECT_EQ(h.positionals, e.positionals) << r.out;
  }
}

TEST_F(cli_test, placement_constraints_pin_each_node_to_the_host_labelled_for_it) {
  std::ostringstream out, err;
  EXPECT_EQ(cli::placement_constraints_command({"agg-1", "follower-1"}, "esflow.node", out, err), cli::k_ok);
  EXPECT_EQ(out.str(),
            "agg-1: [\"node.labels.esflow.node == agg-1\"]\n"
            "follower-1: [\"node.labels.esflow.node == follower-1\"]\n");
  EXPECT_EQ(err.str(), "");
  std::ostringstream other;
  EXPECT_EQ(cli::placement_constraints_command({"n1"}, "site.rack", other, err), cli::k_ok);
  EXPECT_EQ(other.str(), "n1: [\"node.labels.site.rack == n1\"]\n");
}

TEST_F(cli_test, placement_constraints_refuse_a_bad_or_repeated_node_id_with_2) {
  for (const auto& [ids, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"Agg-1"}, "invalid node id 'Agg-1': [a-z0-9][a-z0-9_-]{0,62}\n"},
           {{"agg 1"}, "invalid node id 'agg 1': [a-z0-9][a-z0-9_-]{0,62}\n"},
           {{"-agg"}, "invalid node id '-agg': [a-z0-9][a-z0-9_-]{0,62}\n"},
           {{"agg-1", "agg-1"}, "node id 'agg-1' given twice\n"}}) {
    std::ostringstream out, err;
    EXPECT_EQ(cli::placement_constraints_command(ids, "esflow.node", out, err), cli::k_usage) << message;
    EXPECT_EQ(err.str(), message);
    EXPECT_EQ(out.str(), "");
  }
  std::ostringstream out, err;
  EXPECT_EQ(cli::placement_constraints_command({"a"}, "bad label", out, err), cli::k_usage);
  EXPECT_EQ(err.str(), "invalid label 'bad label': [a-z0-9][a-z0-9._-]{0,62}\n");
}

TEST_F(cli_test, binary_placement_constraints_prints_the_yaml_lines) {
  auto r = run_esflow(dir, "placement constraints --node-id agg-1 --node-id agg-2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "agg-1: [\"node.labels.esflow.node == agg-1\"]\nagg-2: [\"node.labels.esflow.node == agg-2\"]\n");
  EXPECT_EQ(run_esflow(dir, "placement constraints").code, cli::k_usage);
  EXPECT_EQ(run_esflow(dir, "placement constraints --node-id UPPER").code, cli::k_usage);
}

TEST_F(cli_test, binary_placement_constraints_by_tenant_range_prints_one_stanza_per_range) {
  auto r = run_esflow(dir, "placement constraints --ranges a-m,n-z");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("aggregate-a-m:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node.labels.tenant_range==a-m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node.labels.tenant_range==n-z"), std::string::npos) << r.out;
  auto overlap = run_esflow(dir, "placement constraints --ranges a-m,k-z");
  EXPECT_EQ(overlap.code, cli::k_usage);
  EXPECT_NE(overlap.err.find("a-m"), std::string::npos) << overlap.err;
  EXPECT_EQ(run_esflow(dir, "placement constraints --ranges a-m --node-id agg-1").code, cli::k_usage);
}

TEST_F(cli_test, stages_and_kinds_markdown_are_deterministic_and_name_every_kind) {
  std::ostringstream a, b, ka, kb;
  EXPECT_EQ(cli::stages_command("markdown", a), cli::k_ok);
  EXPECT_EQ(cli::stages_command("markdown", b), cli::k_ok);
  EXPECT_EQ(a.str(), b.str());
  EXPECT_EQ(a.str().rfind("# Stage kinds\n", 0), 0u);
  for (const auto* d : cli::builtin_registry().all()) {
    EXPECT_NE(a.str().find("\n## " + d->kind + "\n"), std::string::npos) << d->kind;
    for (const auto& p : d->params)
      EXPECT_NE(a.str().find("| `" + p.name + "` | "), std::string::npos) << d->kind << "." << p.name;
  }
  EXPECT_EQ(cli::kinds_command("markdown", ka), cli::k_ok);
  EXPECT_EQ(cli::kinds_command("markdown", kb), cli::k_ok);
  EXPECT_EQ(ka.str(), kb.str());
  for (const auto* k : cli::builtin_registry().node_kinds())
    EXPECT_NE(ka.str().find("\n## " + k->name + "\n"), std::string::npos) << k->name;
  for (const auto& s : cli::builtin_registry().settings())
    EXPECT_NE(ka.str().find("| `" + s.name + "` | "), std::string::npos) << s.name;
  EXPECT_NE(ka.str().find("| `durability` | choice: fsync \\| relaxed | `fsync` |"), std::string::npos)
      << ka.str();
}

TEST_F(cli_test, binary_run_check_loads_and_applies_the_flags_without_starting_anything) {
  const auto pipelines = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
  auto r =
      run_esflow(dir, "run --check " + pipelines + "aggregate-jetstream.yaml " + pipelines +
                          "follower.yaml --http 127.0.0.1:1 --data-dir never-made --nats nats://127.0.0.1:1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, pipelines +
                       "aggregate-jetstream.yaml: ok (pipeline 'aggregate', 11 stages; event_log jetstream, "
                       "data_dir never-made)\n" +
                       pipelines +
                       "follower.yaml: ok (pipeline 'follower', 2 stages; event_log jetstream, data_dir "
                       "never-made)\nhttp 127.0.0.1:1\n");
  EXPECT_FALSE(std::filesystem::exists(dir.file("never-made"))) << "--check opened the node store";

  const auto bad = dir.write("bad.yaml", k_bad);
  r = run_esflow(dir, "run --check " + bad);
  EXPECT_EQ(r.code, cli::k_usage);
  EXPECT_EQ(r.err, bad + ":4: stage 'out': unknown kind 'sink.nul' (did you mean 'sink.null'?)\n");
}

// settings.grpc (or --grpc): one gRPC server per process, so the files that
// set it must agree; --grpc wins over every file.
TEST_F(cli_test, binary_run_check_prints_the_grpc_address_and_refuses_two) {
  auto file = [&](const std::string& name, const std::string& grpc) {
    return dir.write(name + ".yaml", "pipeline: " + name + "\nsettings: { http: \"127.0.0.1:0\", grpc: \"" +
                                         grpc +
                                         "\" }\nstages:\n  gen: { kind: source.generator, count: 1 }\n"
                                         "  out: { kind: sink.null }\nflow:\n  - gen -> out\n");
  };
  const auto a = file("a", "127.0.0.1:1"), b = file("b", "127.0.0.1:2"), none = file("none", "");
  auto r = run_esflow(dir, "run --check " + a + " " + none);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\ngrpc 127.0.0.1:1\n"), std::string::npos) << r.out;
  r = run_esflow(dir, "run --check " + none);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("\ngrpc "), std::string::npos) << r.out;
  r = run_esflow(dir, "run --check " + a + " " + b);
  EXPECT_EQ(r.code, cli::k_usage);
  EXPECT_NE(r.err.find("one gRPC server per process"), std::string::npos) << r.err;
  r = run_esflow(dir, "run --check " + a + " " + b + " --grpc 127.0.0.1:3");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\ngrpc 127.0.0.1:3\n"), std::string::npos) << r.out;
}

TEST_F(cli_test, binary_nats_file_gives_the_url_and_nats_wins_over_it) {
  const auto follower = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/follower.yaml";
  const auto secret = dir.write("nats_url", "  nats://esflow:s3cret@127.0.0.1:1\n");
  auto r = run_esflow(dir, "run --check --nats-file " + secret + " " + follower);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("event_log jetstream"), std::string::npos) << r.out;
  r = run_esflow(dir, "run --check --nats-file " + dir.file("absent") + " " + follower);
  EXPECT_EQ(r.code, cli::k_usage);
  EXPECT_EQ(r.err, "cannot read a NATS URL from '" + dir.file("absent") + "' (--nats-file)\n");
  // --nats wins: the file is not read.
  r = run_esflow(dir,
                 "run --check --nats nats://127.0.0.1:1 --nats-file " + dir.file("absent") + " " + follower);
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_esflow(dir, "run --check " + follower);
  EXPECT_NE(r.out.find("event_log embedded"), std::string::npos) << r.out;
}

TEST_F(cli_test, binary_unknown_subcommand_exits_2) {
  auto r = run_esflow(dir, "frobnicate");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  // CLI11 2.1 reports an unknown word in subcommand position as a missing subcommand.
  EXPECT_EQ(r.err, "A subcommand is required\nRun with --help for more information.\n");
}

TEST_F(cli_test, binary_unknown_option_exits_2_naming_it) {
  auto r = run_esflow(dir, "validate --bogus x.yaml");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;
}

TEST_F(cli_test, binary_missing_subcommand_exits_2) {
  auto r = run_esflow(dir, "");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
}

TEST_F(cli_test, binary_validate_bad_file_exits_2_with_file_and_line) {
  const auto bad = dir.write("bad.yaml", k_bad);
  auto r = run_esflow(dir, "validate " + bad);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, bad + ":4: stage 'out': unknown kind 'sink.nul' (did you mean 'sink.null'?)\n");
  auto ok = run_esflow(dir, "validate " + dir.write("good.yaml", k_good));
  EXPECT_EQ(ok.code, 0) << ok.err;
}

// --- bench on a node's own pipeline ------------------------------------------------------

// What the Account program answers for the workload, folded independently of
// the node: per account the balance; a re-sent command id is a duplicate.
struct expected_answers {
  std::uint64_t sent = 0, accepted = 0, duplicates = 0, insufficient_funds = 0;
};
expected_answers fold(const std::vector<stages::bank_command>& workload) {
  expected_answers e;
  std::map<std::string, std::int64_t> balance;
  std::set<std::string> done;
  for (const auto& c : workload) {
    ++e.sent;
    if (!done.insert(c.command_id).second) {
      ++e.accepted;
      ++e.duplicates;
      continue;
    }
    auto& b = balance[c.tenant + "/" + c.account_id];
    if (c.type == "withdraw" && c.amount > b) {
      ++e.insufficient_funds;
      continue;
    }
    ++e.accepted;
    b += c.type == "withdraw" ? -c.amount : c.amount;
  }
  return e;
}

// The shipped file, unchanged: bench swaps its HTTP ingest for the generated
// workload in memory, runs every command to its answer and leaves no ./data.
TEST_F(cli_test, binary_bench_runs_the_shipped_aggregate_pipeline_on_the_workload) {
  const std::string file = ESFLOW_SOURCE_DIR "/pipelines/aggregate.yaml";
  const auto before = read_file(file);
  auto r =
      run_esflow(dir, "--log-level warn bench " + file + " --commands 2000 --accounts 100 --format json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  stages::bank_workload_options o;
  o.commands = 2000;
  o.accounts = 100;
  const auto e = fold(stages::generate_bank_workload(o));
  ASSERT_EQ(e.sent, 2100U);
  ASSERT_GT(e.insufficient_funds, 0U);  // the mix has rejections: the counts below tell them apart
  const auto& c = j.at("commands").at("ingest");
  EXPECT_EQ(c.at("sent"), e.sent) << r.out;
  EXPECT_EQ(c.at("accepted"), e.accepted) << r.out;
  EXPECT_EQ(c.at("duplicates"), e.duplicates) << r.out;
  EXPECT_EQ(c.at("rejected"), (nlohmann::json{{"insufficient_funds", e.insufficient_funds}})) << r.out;
  EXPECT_EQ(c.at("unanswered"), 0) << r.out;
  std::map<std::string, nlohmann::json> stages_by_name;
  for (const auto& s : j.at("stages")) stages_by_name[s.at("stage").get<std::string>()] = s;
  EXPECT_EQ(stages_by_name.at("ingest").at("kind"), "source.workload");
  EXPECT_EQ(stages_by_name.at("commit").at("messages"), 2100) << r.out;
  EXPECT_EQ(read_file(file), before);
  EXPECT_FALSE(fs::exists(dir.path() / "data")) << "bench wrote into ./data";
}

TEST_F(cli_test, binary_bench_sends_a_jsonl_workload_file) {
  const auto w = dir.write(
      "w.jsonl",
      R"({"phase":"setup","seq":0,"command_id":"c-0","tenant":"t1","account_id":"a-1","type":"open_account","data":{"initial_balance":0}})"
      "\n"
      R"({"phase":"run","seq":0,"command_id":"c-1","tenant":"t1","account_id":"a-1","type":"deposit","data":{"amount":50}})"
      "\n"
      R"({"phase":"run","seq":1,"command_id":"c-2","tenant":"t1","account_id":"a-1","type":"withdraw","data":{"amount":80}})"
      "\n"
      R"({"phase":"run","seq":2,"command_id":"c-1","tenant":"t1","account_id":"a-1","type":"deposit","data":{"amount":50},"duplicate_of":0})"
      "\n"
      R"({"tenant_id":"t2","aggregate_type":"Account","aggregate_id":"b-1","payload":{"type":"withdraw","amount":1}})"
      "\n"
      R"({"tenant_id":"t2","aggregate_type":"Account","aggregate_id":"b-2","payload":{"type":"open_account","initial_balance":7}})"
      "\n"
      R"({"phase":"sample","accounts":[{"tenant":"t1","account_id":"a-1"}]})"
      "\n");
  auto r = run_esflow(
      dir, "--log-level warn bench " ESFLOW_SOURCE_DIR "/pipelines/aggregate.yaml --workload w.jsonl");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const auto line = r.out.find("commands ('ingest'): ");
  ASSERT_NE(line, std::string::npos) << r.out;
  auto text = r.out.substr(line, r.out.find('\n', line) - line);
  text = text.substr(0, text.rfind(", "));  // without the rate
  EXPECT_EQ(text,
            "commands ('ingest'): 6 sent, 4 accepted (1 duplicates), 2 rejected (account_not_open 1, "
            "insufficient_funds 1)")
      << r.out;
  EXPECT_NE(r.out.find("ingest          source.workload"), std::string::npos) << r.out;
}

TEST_F(cli_test, binary_bench_names_the_line_of_a_malformed_workload) {
  dir.write("bad.jsonl", "{\"tenant_id\":\"t\",\"aggregate_type\":\"Account\"}\n{\"phase\":\n");
  auto r = run_esflow(
      dir, "--log-level warn bench " ESFLOW_SOURCE_DIR "/pipelines/aggregate.yaml --workload bad.jsonl");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(dir.file("bad.jsonl") +
                       ":2: not a JSON object (a workload record or a command envelope per line)\n"),
            std::string::npos)
      << r.err;
  // The line of the shipped file's `ingest:` stage, wherever it is.
  std::ifstream shipped(ESFLOW_SOURCE_DIR "/pipelines/aggregate.yaml");
  std::string line;
  int ingest_line = 0;
  for (int n = 1; ingest_line == 0 && n < 1000 && std::getline(shipped, line); ++n)
    if (line.rfind("  ingest:", 0) == 0) ingest_line = n;
  ASSERT_GT(ingest_line, 0);
  EXPECT_NE(
      r.err.find("aggregate.yaml:" + std::to_string(ingest_line) + ": stage 'ingest' (source.workload): "),
      std::string::npos)
      << r.err;
}

// --- node kinds ---------------------------------------------------------------------

// A pipeline whose `aggregates:` entry at line 3 is `entry`.
std::string with_aggregate(const std::string& entry) {
  return "pipeline: p\n"
         "aggregates:\n"
         "  Account: " +
         entry +
         "\n"
         "stages:\n"
         "  src: { kind: source.generator, count: 1 }\n"
         "  out: { kind: sink.null }\n"
         "flow:\n"
         "  - src -> out\n";
}

TEST_F(cli_test, binary_validate_checks_the_aggregates_section_with_file_and_line) {
  dir.write("broken.lua", "function decide(state, command)\n  return {\nend\n");
  const auto missing = dir.write("missing.yaml", with_aggregate("{ program: nowhere.lua }"));
  auto r = run_esflow(dir, "validate " + missing);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, missing + ":3: aggregates: 'Account': program '" + dir.file("nowhere.lua") +
                       "': cannot open program file\n");

  const auto syntax = dir.write("syntax.yaml", with_aggregate("{ program: broken.lua }"));
  r = run_esflow(dir, "validate " + syntax);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind(syntax + ":3: aggregates: 'Account': program '" + dir.file("broken.lua") + "': ", 0),
            0U)
      << r.err;
  // Lua names the program's own line (it shortens a long chunk name with "...").
  EXPECT_NE(r.err.find("broken.lua:3: unexpected symbol near 'end'\n"), std::string::npos) << r.err;

  const auto unknown =
      dir.write("unknown.yaml", with_aggregate("{ program: " + std::string(ESFLOW_SOURCE_DIR) +
                                               "/pipelines/programs/account.lua, gass: 5 }"));
  r = run_esflow(dir, "validate " + unknown);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, unknown + ":3: aggregates: 'Account': unknown key 'gass' (did you mean 'gas'?)\n");

  const auto fine = dir.write("fine.yaml", with_aggregate("{ program: " + std::string(ESFLOW_SOURCE_DIR) +
                                                          "/pipelines/programs/account.lua }"));
  r = run_esflow(dir, "validate " + fine);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(cli_test, binary_validate_accepts_every_shipped_pipeline) {
  for (const char* f : {"aggregate.yaml", "aggregate-jetstream.yaml", "follower.yaml", "projection.yaml",
                        "demo.yaml", "gateway.yaml", "gateway-dev.yaml"}) {
    auto r = run_esflow(dir, "validate " + std::string(ESFLOW_SOURCE_DIR) + "/pipelines/" + f);
    EXPECT_EQ(r.code, 0) << f << ": " << r.err;
  }
}

// `esflow dev` runs every shipped node kind, the gateway included (cli/main.cc
// k_dev_pipelines); --check starts nothing, so it makes no dev key either.
TEST_F(cli_test, binary_dev_check_lists_every_shipped_node_kind_the_gateway_included) {
  const auto data = dir.path().string() + "/data";
  auto r = run_esflow(dir, "dev --check --data-dir " + data);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"aggregate.yaml", "aggregate"},         {"follower.yaml", "follower"},
      {"projection.yaml", "projection"},       {"runner-saga.yaml", "runner"},
      {"runner-effect.yaml", "runner-effect"}, {"gateway-dev.yaml", "gateway"}};
  for (const auto& [file, pipeline] : expected)
    EXPECT_NE(r.out.find("/" + file + ": ok (pipeline '" + pipeline + "', "), std::string::npos)
        << file << "\n"
        << r.out;
  EXPECT_NE(r.out.find("gateway-dev.yaml: ok (pipeline 'gateway', 5 stages; event_log embedded, data_dir " +
                       data + ")"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(std::filesystem::exists(data + "/dev-keys.jsonl"));

  r = run_esflow(dir, "dev --check --nats nats://127.0.0.1:4222 --data-dir " + data);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("gateway-dev.yaml: ok (pipeline 'gateway', 5 stages; event_log jetstream"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("aggregate-jetstream.yaml: ok"), std::string::npos) << r.out;
}

TEST_F(cli_test, kinds_lists_node_kinds_with_their_sections_and_stages) {
  std::ostringstream out;
  EXPECT_EQ(cli::kinds_command("json", out), cli::k_ok);
  auto j = nlohmann::json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out.str();
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& k : j.at("node_kinds")) by_name[k.at("name").get<std::string>()] = k;
  ASSERT_TRUE(by_name.count("aggregate")) << out.str();
  ASSERT_TRUE(by_name.count("follower")) << out.str();
  EXPECT_EQ(by_name["aggregate"].at("sections"), nlohmann::json::array({"aggregates"}));
  const auto agg_stages = by_name["aggregate"].at("stages").get<std::set<std::string>>();
  for (const char* k : {"aggregate.rehydrate", "aggregate.decide", "aggregate.commit", "aggregate.answer"})
    EXPECT_TRUE(agg_stages.count(k)) << k;
  EXPECT_EQ(by_name["follower"].at("stages"), nlohmann::json::array({"log.follow"}));
  ASSERT_TRUE(by_name.count("projection")) << out.str();
  EXPECT_EQ(by_name["projection"].at("sections"), nlohmann::json::array({"views"}));
  const auto projection_stages = by_name["projection"].at("stages").get<std::set<std::string>>();
  for (const char* k : {"projection.follow", "projection.decode", "projection.project", "projection.store",
                        "projection.notify"})
    EXPECT_TRUE(projection_stages.count(k)) << k;
  const auto shared = j.at("shared_stages").get<std::set<std::string>>();
  for (const char* k : {"tenant.gate", "decode.command", "ack", "http.commands", "nats.request"})
    EXPECT_TRUE(shared.count(k)) << k;
  std::set<std::string> engine, node;
  for (const auto& p : j.at("settings").at("engine")) engine.insert(p.at("name").get<std::string>());
  for (const auto& p : j.at("settings").at("node")) node.insert(p.at("name").get<std::string>());
  EXPECT_EQ(engine, (std::set<std::string>{"max_in_flight", "drain_timeout", "http", "grpc", "node_id",
                                           "advertise_http", "advertise_grpc"}));
  for (const char* k : {"data_dir", "durability", "event_log", "nats_url", "dedupe_ttl", "tenancy"})
    EXPECT_TRUE(node.count(k)) << k;

  std::ostringstream text;
  EXPECT_EQ(cli::kinds_command("text", text), cli::k_ok);
  EXPECT_NE(text.str().find("aggregate\n"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("    sections: aggregates\n"), std::string::npos) << text.str();
}

// SIGTERM drains; a second one while the drain waits ends the process at once.
TEST_F(cli_test, binary_second_sigterm_during_a_drain_exits_at_once) {
  const auto f = dir.write("slow.yaml",
                           "pipeline: slow\n"
                           "settings: { http: \"127.0.0.1:0\", drain_timeout: 60s, max_in_flight: 4 }\n"
                           "stages:\n"
                           "  gen: { kind: source.generator, count: 100, rate: 1000 }\n"
                           "  hold: { kind: delay, micros: 30000000, concurrency: unlimited }\n"
                           "  out: { kind: sink.null }\n"
                           "flow:\n"
                           "  - gen -> hold -> out\n");
  const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    if (std::freopen(dir.file("slow.log").c_str(), "w", stderr) == nullptr) _exit(126);
    ::execl(bin.c_str(), bin.c_str(), "run", f.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Let messages enter the 30 s hold (bounded: the node logs when it runs).
  for (int i = 0; i < 300 && read_file(dir.file("slow.log")).find("running") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGTERM);  // drains: waits for the held messages (up to 60 s)
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "the first SIGTERM must drain, not exit";
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(pid, SIGTERM);
  bool exited = false;
  for (int i = 0; i < 300 && !exited; ++i) {
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "the second SIGTERM did not end the process within 3 s\n"
                      << read_file(dir.file("slow.log"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_NE(read_file(dir.file("slow.log")).find("draining (signal)"), std::string::npos)
      << read_file(dir.file("slow.log"));
}

}  // namespace
}  // namespace esflow::graph::testing
