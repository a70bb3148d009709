#pragma once
// `esflow load` as the real binary for the load tests: run with arguments,
// bounded by `timeout`, stdout and stderr captured, the JSON report parsed.
#include "tests/graph/graph_test_util.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <sys/wait.h>

namespace esflow::load::testing {

struct load_run {
  int code = -1;
  std::string out, err;
  nlohmann::json report;  // discarded unless stdout is one JSON document
};

inline load_run run_load(const graph::testing::temp_dir& dir, const std::string& args, int timeout_s = 240) {
  const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  const auto out = dir.file("load.out"), err = dir.file("load.err");
  const auto cmd = "cd " + dir.path().string() + " && timeout " + std::to_string(timeout_s) + " " + bin +
                   " load " + args + " >" + out + " 2>" + err + " </dev/null";
  const int status = std::system(cmd.c_str());
  load_run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = graph::testing::read_file(out);
  r.err = graph::testing::read_file(err);
  r.report = nlohmann::json::parse(r.out, nullptr, false);
  return r;
}

// The failure checks a JSON report names.
inline std::vector<std::string> failed_checks(const nlohmann::json& report) {
  std::vector<std::string> checks;
  if (!report.is_object() || !report["verification"].is_object()) return checks;
  for (const auto& f : report["verification"]["failures"]) checks.push_back(f.value("check", ""));
  return checks;
}

}  // namespace esflow::load::testing
