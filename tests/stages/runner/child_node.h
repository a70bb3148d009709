#pragma once
// A real `esflow run` child process of a runner test (fork/exec of the built
// binary) on a data directory and a loopback HTTP port: killed (SIGKILL), or
// terminated (SIGTERM: the process drains and exits by itself), and started
// again on the same directory and port. Its output goes to <data dir>.log.
#include "tests/stages/runner/runner_harness.h"
#include "tests/transport/nats/nats_server_fixture.h"

#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace esflow::runner_test {

class child_node {
 public:
  // crash_at: ESFLOW_TEST_CRASH_AT of the child (stages/runner/crash_point.h); empty: none.
  // args: more command-line arguments (e.g. --nats URL). port: 0 picks a free one.
  child_node(const std::string& data_dir, const std::vector<std::string>& files,
             const std::string& crash_at = {}, const std::vector<std::string>& extra_args = {},
             int port = 0) {
    _port = port != 0 ? port : nats::testing::nats_server_fixture::free_port();
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    std::vector<std::string> args = {bin, "run"};
    for (const auto& f : files) args.push_back(f);
    for (const auto& a :
         {std::string("--data-dir"), data_dir, std::string("--http"), "127.0.0.1:" + std::to_string(_port)})
      args.push_back(a);
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e)
      if (std::string_view(*e).rfind("ESFLOW_TEST_CRASH_AT=", 0) != 0) env.emplace_back(*e);
    if (!crash_at.empty()) env.push_back("ESFLOW_TEST_CRASH_AT=" + crash_at);
    // Everything the child needs is built before the fork: after it, the child of a threaded process
    // must not allocate (another thread may have held the malloc lock at the fork).
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string log_path = data_dir + ".log";
    _pid = ::fork();
    if (_pid == 0) {
      const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(bin.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
  }
  ~child_node() { kill(); }
  child_node(const child_node&) = delete;
  child_node& operator=(const child_node&) = delete;

  // Serving (GET /ready answers 200) within the time; false as soon as the child ended.
  bool ready(std::chrono::seconds within) {
    bool up = false;
    eventually(
        [&] {
          if (ended()) return true;
          up = ready_status() == 200;
          return up;
        },
        within);
    return up && !ended();
  }
  // One GET /ready: its status, 0 without an answer.
  int ready_status() const {
    httplib::Client c("127.0.0.1", _port);
    c.set_connection_timeout(0, 200000);
    auto r = c.Get("/ready");
    return r ? r->status : 0;
  }
  void kill() {
    if (_pid > 0 && ::kill(_pid, SIGKILL) == 0) ::waitpid(_pid, nullptr, 0);
    _pid = -1;
  }
  // Asks for a drain (the signal `esflow run` drains on); the child then ends by itself.
  void terminate() {
    if (_pid > 0) ::kill(_pid, SIGTERM);
  }
  // Waits (bounded) for the child to end by itself: its exit code, or -1 (then it is killed).
  int wait_exit(std::chrono::milliseconds within) {
    eventually([&] { return ended(); }, within);
    if (!ended()) kill();
    return _exit_code;
  }
  // Reaps the child once it ended by itself (its exit code kept).
  bool ended() {
    int status = 0;
    if (_pid > 0 && ::waitpid(_pid, &status, WNOHANG) == _pid) {
      _pid = -1;
      _exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return true;
    }
    return _exit_code != -1;
  }
  int port() const { return _port; }

 private:
  pid_t _pid = -1;
  int _port = 0;
  int _exit_code = -1;
};

// The end of a child's output (a failed round's why).
inline std::string log_tail(const std::string& data_dir) {
  std::ifstream in(data_dir + ".log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

}  // namespace esflow::runner_test
