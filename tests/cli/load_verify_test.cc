// `esflow load`'s verification must catch a broken node: one that answers a
// deposit accepted but never stores it, and one that stores a deposit
// twice. The fake node (fake_bank_node.h) is correct otherwise, which the
// control run without a fault shows.
#include "tests/cli/fake_bank_node.h"
#include "tests/cli/load_run.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace esflow::load::testing {
namespace {

// 50 accounts, 500 run commands (about 350 deposits): the 100th deposit is
// faulty; 4 clients.
std::string small_run(const fake_bank_node& node) {
  return "--url " + node.url() + " --accounts 50 --commands 500 --clients 4 --format json";
}

bool names(const std::vector<std::string>& checks, const std::string& check) {
  return std::find(checks.begin(), checks.end(), check) != checks.end();
}

TEST(load_verify, passes_on_a_correct_node) {
  graph::testing::temp_dir dir;
  fake_bank_node node(fault::none, 0);
  const auto r = run_load(dir, small_run(node));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(r.report.is_object()) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], true) << r.out;
  EXPECT_EQ(r.report["verification"]["accounts_read"], 50) << r.out;
  EXPECT_EQ(r.report["run"]["answered"], 500) << r.out;
  EXPECT_EQ(r.report["run"]["error"], 0) << r.out;
}

TEST(load_verify, fails_when_an_accepted_command_is_not_stored) {
  graph::testing::temp_dir dir;
  fake_bank_node node(fault::lose, 100);
  const auto r = run_load(dir, small_run(node));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  ASSERT_TRUE(r.report.is_object()) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], false) << r.out;
  const auto checks = failed_checks(r.report);
  EXPECT_TRUE(names(checks, "accepted_not_stored")) << r.out;
  EXPECT_TRUE(names(checks, "balance")) << r.out;  // the lost deposit is missing from the fold
  EXPECT_FALSE(names(checks, "stored_twice")) << r.out;
  EXPECT_NE(r.err.find("verification failed: accepted_not_stored: 1 accepted commands not stored"),
            std::string::npos)
      << r.err;
}

TEST(load_verify, fails_when_a_command_is_stored_twice) {
  graph::testing::temp_dir dir;
  fake_bank_node node(fault::twice, 100);
  const auto r = run_load(dir, small_run(node));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  ASSERT_TRUE(r.report.is_object()) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], false) << r.out;
  const auto checks = failed_checks(r.report);
  EXPECT_TRUE(names(checks, "stored_twice")) << r.out;
  EXPECT_FALSE(names(checks, "accepted_not_stored")) << r.out;
  EXPECT_NE(r.err.find("verification failed: stored_twice: 1 command ids stored more than once"),
            std::string::npos)
      << r.err;
}

// The text report says it too, with the exit code.
TEST(load_verify, text_report_names_the_failure) {
  graph::testing::temp_dir dir;
  fake_bank_node node(fault::lose, 10);
  const auto r = run_load(dir, "--url " + node.url() + " --accounts 20 --commands 200 --clients 2");
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("  FAIL accepted_not_stored: 1 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  verification FAILED\n"), std::string::npos) << r.out;
}

// A node shedding load answers `unavailable`; the load sends the command again
// (bounded backoff) and counts it apart; without retries it is an error, which
// verification treats as unknown, never as lost.
TEST(load_verify, unavailable_answers_are_sent_again_and_counted) {
  graph::testing::temp_dir dir;
  fake_bank_node node(fault::shed, 7);
  // Few setup clients: the fake's small listen backlog is not what is tested.
  auto r = run_load(dir, small_run(node) + " --setup-clients 4");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(r.report.is_object()) << r.out;
  EXPECT_EQ(r.report["run"]["error"], 0) << r.out;
  EXPECT_EQ(r.report["setup"]["error"], 0) << r.report["setup"].dump();
  const auto retried =
      r.report["setup"]["retried_unavailable"].get<int>() + r.report["run"]["retried_unavailable"].get<int>();
  // Every 7th arrival, re-sends included, unless it is a re-send itself: about 550/6.
  EXPECT_GE(retried, 60) << r.out;
  EXPECT_LE(retried, 100) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], true) << r.out;

  fake_bank_node again(fault::shed, 7);
  r = run_load(dir, "--url " + again.url() +
                        " --accounts 50 --commands 500 --clients 4 --setup-clients 4 --format json "
                        "--unavailable-retries 0");
  ASSERT_TRUE(r.report.is_object()) << r.out << r.err;
  EXPECT_EQ(r.report["setup"]["retried_unavailable"], 0) << r.out;
  EXPECT_GT(r.report["run"]["error_by_code"].value("unavailable", 0), 0) << r.out;
}

}  // namespace
}  // namespace esflow::load::testing
