// `esflow load` as the real binary against a real aggregate node (the shipped
// pipelines, served in this process on 127.0.0.1): over HTTP, gRPC and NATS
// request/reply, the report's counts match the workload and verification
// (from the node's event reads over HTTP) passes.
#include "cli/app.h"
#include "stages/bank_workload.h"
#include "tests/cli/load_run.h"
#include "tests/stages/nats/node_env.h"
#include "transport/grpc_server.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>

namespace esflow::load::testing {
namespace {

constexpr int k_accounts = 200, k_commands = 2000;

// The duplicates the generator puts in those 2,000 run commands.
std::int64_t duplicates_in_workload() {
  stages::bank_workload_options o;
  o.accounts = k_accounts;
  o.commands = k_commands;
  std::int64_t n = 0;
  for (const auto& c : stages::generate_bank_workload(o)) n += c.duplicate_of >= 0 ? 1 : 0;
  return n;
}

std::string workload_args() {
  return "--accounts " + std::to_string(k_accounts) + " --commands " + std::to_string(k_commands) +
         " --clients 4 --duration 0 --format json";
}

// A clean run: every command answered, none an error, every duplicate a
// duplicate, verification passed over every account.
void expect_clean_run(const load_run& r) {
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(r.report.is_object()) << r.out;
  const auto& setup = r.report["setup"];
  EXPECT_EQ(setup["answered"], k_accounts) << r.out;
  EXPECT_EQ(setup["accepted"], k_accounts) << r.out;
  const auto& run = r.report["run"];
  EXPECT_EQ(run["clients"], 4);
  EXPECT_EQ(run["stopped"], "end");
  EXPECT_EQ(run["answered"], k_commands) << r.out;
  EXPECT_EQ(run["error"], 0) << r.out;
  EXPECT_EQ(run["duplicate"], duplicates_in_workload()) << r.out;
  EXPECT_EQ(run["accepted"].get<int>() + run["duplicate"].get<int>() + run["rejected"].get<int>(),
            k_commands);
  // Rejections of this workload are overdrafts only.
  for (const auto& [code, n] : run["rejected_by_code"].items()) EXPECT_EQ(code, "insufficient_funds") << n;
  EXPECT_GT(run["commands_per_s"].get<double>(), 0);
  EXPECT_GT(run["latency_us"]["p50"].get<double>(), 0);
  EXPECT_LE(run["latency_us"]["p50"].get<double>(), run["latency_us"]["p999"].get<double>());
  const auto& v = r.report["verification"];
  EXPECT_EQ(v["passed"], true) << r.out;
  EXPECT_EQ(v["accounts_read"], k_accounts) << r.out;
  EXPECT_EQ(v["events_stored"], v["commands_accepted"]) << r.out;
  EXPECT_EQ(v["commands_accepted"].get<int>(), k_accounts + run["accepted"].get<int>()) << r.out;
}

// The shipped aggregate.yaml on a fresh data directory, HTTP and gRPC on free ports.
class load_embedded : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("ESFLOW_DURABILITY", "relaxed", 1);  // the figures are not the point here
    cli::serve_options o;
    o.overrides.data_dir = (_dir.path() / "data").string();
    o.overrides.http = "127.0.0.1:0";
    o.overrides.grpc = "127.0.0.1:0";
    auto served = cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml"}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    auto& host = cli::served_host(*_served);
    for (int i = 0; i < 2000 && !host.ready().ok; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(host.ready().ok) << host.ready().detail;
  }
  void TearDown() override { _served.reset(); }

  graph::testing::temp_dir _dir;
  std::shared_ptr<cli::served_nodes> _served;
};

TEST_F(load_embedded, over_http_counts_match_and_verification_passes) {
  const auto r = run_load(_dir, "--url " + cli::served_url(*_served) + " " + workload_args());
  expect_clean_run(r);
  EXPECT_EQ(r.report["transport"], "http");
}

TEST_F(load_embedded, over_grpc_counts_match_and_verification_passes) {
  const auto target = cli::served_host(*_served).grpc()->target();
  const auto r = run_load(_dir, "--transport grpc --url " + target + " --read-url " +
                                    cli::served_url(*_served) + " " + workload_args());
  expect_clean_run(r);
  EXPECT_EQ(r.report["transport"], "grpc");
}

TEST_F(load_embedded, a_duration_or_max_commands_stops_the_run_and_the_part_sent_verifies) {
  const auto r =
      run_load(_dir, "--url " + cli::served_url(*_served) + " --accounts " + std::to_string(k_accounts) +
                         " --commands 5000 --max-commands 300 --clients 3 "
                         "--format json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.report["run"]["stopped"], "max_commands") << r.out;
  EXPECT_EQ(r.report["run"]["answered"], 300) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], true) << r.out;
}

TEST_F(load_embedded, usage_errors_exit_2_naming_the_flag) {
  auto r = run_load(_dir, "--transport nats --url nats://127.0.0.1:1");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--read-url"), std::string::npos) << r.err;
  r = run_load(_dir, "--commands 10");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--url is required"), std::string::npos) << r.err;
  r = run_load(_dir, "--url http://127.0.0.1:1 --clients 5000");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--clients"), std::string::npos) << r.err;
}

TEST_F(load_embedded, a_node_that_does_not_answer_fails_with_1_naming_the_url) {
  const auto url = "http://127.0.0.1:" + std::to_string(nats::testing::nats_server_fixture::free_port());
  const auto r = run_load(_dir, "--url " + url + " --accounts 10 --commands 10 --timeout-ms 2000");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("no setup command was answered by " + url), std::string::npos) << r.err;
}

// The JetStream aggregate pipeline on a real nats-server: commands over NATS
// request/reply, reads over the node's HTTP. A missing nats-server fails.
TEST(load_nats, over_nats_counts_match_and_verification_passes) {
  nats::testing::nats_server_fixture server;
  ASSERT_TRUE(server.start()) << "nats-server did not start (install it, or set ESFLOW_NATS_SERVER)";
  nats::testing::temp_path dir;
  auto served = nats::testing::serve({nats::testing::shipped_jetstream_pipeline(dir)},
                                     (dir.path() / "data").string(), server.url());
  ASSERT_TRUE(served);
  graph::testing::temp_dir out;
  const auto r = run_load(out, "--transport nats --url " + server.url() + " --read-url " +
                                   cli::served_url(*served) + " " + workload_args());
  expect_clean_run(r);
  EXPECT_EQ(r.report["transport"], "nats");
}

}  // namespace
}  // namespace esflow::load::testing
