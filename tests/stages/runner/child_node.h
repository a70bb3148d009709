#pragma once
// A real `esflow run` child process of a runner test (tests/support/esflow_child.h)
// on a data directory and a loopback HTTP port: killed (SIGKILL), or
// terminated (SIGTERM: the process drains and exits by itself), and started
// again on the same directory and port. Its output goes to <data dir>.log.
#include "tests/stages/runner/runner_harness.h"
#include "tests/support/esflow_child.h"

namespace esflow::runner_test {

class child_node : public esflow::testing::esflow_child {
 public:
  // crash_at: ESFLOW_TEST_CRASH_AT of the child (stages/runner/crash_point.h); empty: none.
  // extra_args: more command-line arguments (e.g. --nats URL). port: 0 picks a free one.
  child_node(const std::string& data_dir, const std::vector<std::string>& files,
             const std::string& crash_at = {}, const std::vector<std::string>& extra_args = {}, int port = 0)
      : esflow_child(run_args(data_dir, files, extra_args), data_dir + ".log",
                     {"ESFLOW_TEST_CRASH_AT=" + crash_at}, port) {}

 private:
  static std::vector<std::string> run_args(const std::string& data_dir, const std::vector<std::string>& files,
                                           const std::vector<std::string>& extra_args) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), files.begin(), files.end());
    args.push_back("--data-dir");
    args.push_back(data_dir);
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return args;
  }
};

// The end of a child's output (a failed round's why), also after the child is gone.
inline std::string log_tail(const std::string& data_dir) {
  std::ifstream in(data_dir + ".log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

}  // namespace esflow::runner_test
