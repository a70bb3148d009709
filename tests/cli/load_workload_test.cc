// The workload `esflow load` sends: the in-process generator prints the JSONL
// generator's exact bytes (pinned by the SHA-256 of its output), the printed
// file reads back as the same commands, and a malformed file names its line.
#include "cli/load/workload.h"
#include "common/sha256.h"
#include "tests/cli/load_run.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace esflow::load::testing {
namespace {

// `node gen-workload.mjs --commands 1000 | sha256sum` (seed 42, 10,000
// accounts, 4 tenants): 10,000 setup lines, 1,000 run lines, the sample line.
constexpr const char* k_sha256_1000 = "78bd2b3f14c10d5b11b27bc28cc28af4f769b20ab71ac86e9735500dfc75a34a";

stages::bank_workload_options thousand() {
  stages::bank_workload_options o;
  o.commands = 1000;
  return o;
}

TEST(load_workload, prints_the_generators_bytes) {
  std::ostringstream out;
  print_workload(thousand(), out);
  const auto text = out.str();
  EXPECT_EQ(sha256_digest::of(text).to_hex(), k_sha256_1000);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 11001);
}

TEST(load_workload, binary_print_workload_prints_the_same_bytes) {
  graph::testing::temp_dir dir;
  const auto r = run_load(dir, "--print-workload --commands 1000", 60);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(sha256_digest::of(r.out).to_hex(), k_sha256_1000);
}

TEST(load_workload, a_printed_file_reads_back_as_the_generated_workload) {
  graph::testing::temp_dir dir;
  auto o = thousand();
  o.accounts = 50;
  std::ostringstream out;
  print_workload(o, out);
  const auto read = read_workload(dir.write("w.jsonl", out.str()));
  ASSERT_TRUE(read.ok()) << read.err().to_string();
  const auto made = generate_workload(o);
  ASSERT_EQ(read->setup.size(), 50U);
  ASSERT_EQ(read->run.size(), made.run.size());
  for (std::size_t i = 0; i < made.run.size(); ++i) {
    EXPECT_EQ(read->run[i].body, made.run[i].body) << i;
    EXPECT_EQ(read->run[i].cmd.duplicate_of, made.run[i].cmd.duplicate_of) << i;
  }
  ASSERT_EQ(read->sample.size(), 50U);  // min(100, accounts)
  EXPECT_EQ(read->sample[0].account_id, made.sample[0].account_id);
}

TEST(load_workload, a_malformed_line_is_named_with_its_file_and_line) {
  graph::testing::temp_dir dir;
  const auto f = dir.write(
      "w.jsonl",
      R"({"phase":"setup","seq":0,"command_id":"c-1","tenant":"t","account_id":"a","type":"open_account","data":{"initial_balance":0}})"
      "\n"
      R"({"aggregate_type":"Account","aggregate_id":"a","payload":{"type":"deposit","amount":1}})"
      "\n");
  const auto read = read_workload(f);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.err().message.find(f + ":2: "), std::string::npos) << read.err().message;
  const auto r = run_load(dir, "--url http://127.0.0.1:1 --workload " + f, 60);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(f + ":2: "), std::string::npos) << r.err;
}

}  // namespace
}  // namespace esflow::load::testing
