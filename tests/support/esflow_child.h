#pragma once
// A real `esflow` child process for tests between processes: started by
// fork/exec with the given arguments (its output appended to a log file),
// ready once GET /ready answers 200 on its HTTP port, stopped by its PID
// (SIGKILL: a crash; SIGTERM: a drain, after which it ends by itself and its
// exit code is kept).
#include <httplib.h>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace esflow::testing {

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

class esflow_child {
 public:
  // args after the binary, e.g. {"run", "pipelines/x.yaml", "--data-dir", d}; --http is added.
  // env: "NAME=value" replaces the inherited NAME ("NAME=" unsets it). port: 0 picks a free one
  // (a restart passes the previous one).
  esflow_child(std::vector<std::string> args, std::string log_path,
               const std::vector<std::string>& env_set = {}, int port = 0)
      : _log(std::move(log_path)) {
    _port = port != 0 ? port : free_loopback_port();
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    args.insert(args.begin(), bin);
    args.push_back("--http");
    args.push_back("127.0.0.1:" + std::to_string(_port));
    const auto name_of = [](std::string_view e) { return e.substr(0, e.find('=') + 1); };
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      bool replaced = false;
      for (const auto& set : env_set) replaced = replaced || name_of(set) == name_of(*e);
      if (!replaced) env.emplace_back(*e);
    }
    for (const auto& set : env_set)
      if (set.size() > name_of(set).size()) env.push_back(set);
    // Built before the fork: the child of a threaded process must not allocate.
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    _pid = ::fork();
    if (_pid == 0) {
      const int fd = ::open(_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execve(bin.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    _args = std::move(args);
  }
  ~esflow_child() { kill(); }
  esflow_child(const esflow_child&) = delete;
  esflow_child& operator=(const esflow_child&) = delete;

  int port() const { return _port; }
  std::string http() const { return "127.0.0.1:" + std::to_string(_port); }

  // GET /ready answers 200 within the time (bounded polls); false once the child ended.
  bool ready(std::chrono::milliseconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    for (int i = 0; i < 1000 && std::chrono::steady_clock::now() < until; ++i) {
      if (ended()) return false;
      if (ready_status() == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
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
  // Waits (bounded polls) for the child to end by itself: its exit code, or -1 (then it is killed).
  int wait_exit(std::chrono::milliseconds within) {
    const auto until = std::chrono::steady_clock::now() + within;
    while (!ended() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!ended()) kill();
    return _exit_code;
  }
  // Reaps the child once it ended (its exit code kept: -1 when killed or not exited normally).
  bool ended() {
    int status = 0;
    if (_pid > 0 && ::waitpid(_pid, &status, WNOHANG) == _pid) {
      _pid = -1;
      _exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    return _pid <= 0;
  }
  std::string log_tail(std::size_t bytes = 4000) const {
    std::ifstream in(_log);
    std::stringstream s;
    s << in.rdbuf();
    auto text = s.str();
    return text.size() > bytes ? text.substr(text.size() - bytes) : text;
  }

 private:
  std::vector<std::string> _args;
  std::string _log;
  pid_t _pid = -1;
  int _port = 0;
  int _exit_code = -1;
};

}  // namespace esflow::testing
