// The words of `esflow load`'s report: which answers are rejections (nothing
// stored) and which are errors (maybe stored), and the phase figures.
#include "cli/load/outcome.h"
#include "cli/load/report.h"

#include <gtest/gtest.h>

namespace esflow::load::testing {
namespace {

TEST(load_report, contract_rejections_and_errors_are_told_apart) {
  for (const char* code : {"insufficient_funds", "invalid_command", "version_conflict", "tenant_not_hosted",
                           "unauthenticated", "command_id_reused"})
    EXPECT_EQ(outcome_of_code(code), outcome::rejected) << code;
  for (const char* code : {"unavailable", "deadline_exceeded", "internal", "program_error", "client_timeout",
                           "client_connect_failed", ""})
    EXPECT_EQ(outcome_of_code(code), outcome::error) << code;
}

TEST(load_report, answers_of_command_result_bodies) {
  EXPECT_EQ(answer_of_json(R"({"status":"accepted","duplicate":false})", "x").kind, outcome::accepted);
  EXPECT_EQ(answer_of_json(R"({"status":"accepted","duplicate":true})", "x").kind, outcome::duplicate);
  const auto overdraft = answer_of_json(R"({"status":"rejected","code":"insufficient_funds"})", "http_422");
  EXPECT_EQ(overdraft.kind, outcome::rejected);
  EXPECT_EQ(overdraft.code, "insufficient_funds");
  // A 5xx is an error whatever its code says; a body that is no CommandResult too.
  EXPECT_EQ(answer_of_json(R"({"status":"rejected","code":"odd"})", "http_500").kind, outcome::error);
  const auto garbage = answer_of_json("<html>", "http_502");
  EXPECT_EQ(garbage.kind, outcome::error);
  EXPECT_EQ(garbage.code, "http_502");
}

TEST(load_report, summary_counts_by_outcome_and_code_with_nearest_rank_quantiles) {
  phase_result r;
  r.name = "run";
  r.clients = 2;
  r.wall_s = 2.0;
  r.stopped = "end";
  r.answers = {{outcome::accepted, ""},
               {outcome::duplicate, ""},
               {outcome::rejected, "insufficient_funds"},
               {outcome::error, "unavailable"},
               {outcome::none, ""}};
  for (std::uint64_t us = 1; us <= 1000; ++us) r.latency_ns.push_back(us * 1000);
  const auto s = summarize(r);
  EXPECT_EQ(s.answered, 4U);
  EXPECT_EQ(s.accepted, 1U);
  EXPECT_EQ(s.duplicate, 1U);
  EXPECT_EQ(s.rejected_by_code.at("insufficient_funds"), 1U);
  EXPECT_EQ(s.error_by_code.at("unavailable"), 1U);
  EXPECT_DOUBLE_EQ(s.commands_per_s, 2.0);
  EXPECT_DOUBLE_EQ(s.p50_us, 500);
  EXPECT_DOUBLE_EQ(s.p90_us, 900);
  EXPECT_DOUBLE_EQ(s.p99_us, 990);
  EXPECT_DOUBLE_EQ(s.p999_us, 999);
  EXPECT_DOUBLE_EQ(s.max_us, 1000);
  const auto j = to_json(s);
  EXPECT_EQ(j["error_by_code"]["unavailable"], 1);
  EXPECT_EQ(j["latency_us"]["p99"], 990.0);
}

}  // namespace
}  // namespace esflow::load::testing
