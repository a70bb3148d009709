#pragma once
// A real `esflow` child process for tests between processes: started by
// fork/exec with the given arguments (its output appended to a log file),
// ready once GET /ready answers 200 on its HTTP port, stopped by its PID
// (SIGKILL: a crash; SIGTERM: a drain).
#include <httplib.h>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <string>
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
  esflow_child(std::vector<std::string> args, std::string log_path) : _log(std::move(log_path)) {
    _port = free_loopback_port();
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    args.insert(args.begin(), bin);
    args.push_back("--http");
    args.push_back("127.0.0.1:" + std::to_string(_port));
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
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
    httplib::Client c("127.0.0.1", _port);
    c.set_connection_timeout(0, 200000);
    const auto until = std::chrono::steady_clock::now() + within;
    for (int i = 0; i < 1000 && std::chrono::steady_clock::now() < until; ++i) {
      if (ended()) return false;
      if (auto r = c.Get("/ready"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void kill() {
    if (_pid > 0 && ::kill(_pid, SIGKILL) == 0) ::waitpid(_pid, nullptr, 0);
    _pid = -1;
  }
  std::string log_tail(std::size_t bytes = 4000) const {
    std::ifstream in(_log);
    std::stringstream s;
    s << in.rdbuf();
    auto text = s.str();
    return text.size() > bytes ? text.substr(text.size() - bytes) : text;
  }

 private:
  bool ended() {
    int status = 0;
    if (_pid > 0 && ::waitpid(_pid, &status, WNOHANG) == _pid) _pid = -1;
    return _pid <= 0;
  }

  std::vector<std::string> _args;
  std::string _log;
  pid_t _pid = -1;
  int _port = 0;
};

}  // namespace esflow::testing
