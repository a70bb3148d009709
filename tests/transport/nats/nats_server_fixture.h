#pragma once
// A real nats-server with JetStream for tests and benchmarks:
//   nats-server -js -a 127.0.0.1 -p <free port> -sd <temp dir>
// started by fork/exec, ready once it accepts TCP connections (bounded wait),
// stopped by PID (SIGTERM, then SIGKILL after a bounded wait). stop() and
// start() again reuse the same port and store dir, for outage tests.
//
// The binary: $ESFLOW_NATS_SERVER, else /usr/sbin/nats-server, else
// `nats-server` on PATH. Network: 127.0.0.1 only. set_extra_args() adds
// arguments (cluster membership: nats_cluster_fixture.h).
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <signal.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::nats::testing {

class nats_server_fixture {
 public:
  nats_server_fixture() {
    static std::atomic<unsigned> counter{0};
    _dir = std::filesystem::temp_directory_path() /
           ("esflow-nats-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(_dir);
    _port = free_port();
  }
  ~nats_server_fixture() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(_dir, ec);
  }
  nats_server_fixture(const nats_server_fixture&) = delete;
  nats_server_fixture& operator=(const nats_server_fixture&) = delete;

  static std::string binary() {
    if (const char* env = std::getenv("ESFLOW_NATS_SERVER"); env != nullptr && *env != '\0') return env;
    if (::access("/usr/sbin/nats-server", X_OK) == 0) return "/usr/sbin/nats-server";
    if (const char* path = std::getenv("PATH"); path != nullptr) {
      std::string p(path);
      std::size_t start = 0;
      while (start <= p.size()) {
        auto end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        auto candidate = p.substr(start, end - start) + "/nats-server";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
      }
    }
    return {};
  }
  static bool available() { return !binary().empty(); }

  // Starts the server; false when it did not accept connections in time.
  bool start(std::chrono::milliseconds ready_within = std::chrono::seconds(10)) {
    if (_pid > 0) return true;
    auto bin = binary();
    if (bin.empty()) return false;
    auto store = (_dir / "js").string();
    auto log = (_dir / "server.log").string();
    auto port = std::to_string(_port);
    std::vector<std::string> args = {bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", store, "-l", log};
    args.insert(args.end(), _extra_args.begin(), _extra_args.end());
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    _pid = pid;
    auto deadline = std::chrono::steady_clock::now() + ready_within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (accepts()) return true;
      int status = 0;
      if (::waitpid(_pid, &status, WNOHANG) == _pid) {  // exited early
        _pid = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  // SIGTERM, then SIGKILL after `grace`; reaps the child. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    if (_pid <= 0) return;
    ::kill(_pid, SIGTERM);
    if (!wait_exit(grace)) {
      ::kill(_pid, SIGKILL);
      wait_exit(std::chrono::seconds(5));
    }
    _pid = -1;
  }
  // SIGKILL at once (a crash of the NATS host's process).
  void kill() {
    if (_pid <= 0) return;
    ::kill(_pid, SIGKILL);
    wait_exit(std::chrono::seconds(5));
    _pid = -1;
  }
  bool restart() {
    stop();
    return start();
  }

  // Arguments appended to the command line from the next start() on.
  void set_extra_args(std::vector<std::string> args) { _extra_args = std::move(args); }

  bool running() const { return _pid > 0; }
  int port() const { return _port; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(_port); }
  const std::filesystem::path& dir() const { return _dir; }

 private:
  bool wait_exit(std::chrono::milliseconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      auto r = ::waitpid(_pid, &status, WNOHANG);
      if (r == _pid || r < 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  bool accepts() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }

 public:
  // A port the kernel just handed out (bound then released): free unless
  // someone grabs it in between, good enough for loopback tests.
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
      socklen_t len = sizeof(a);
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) port = ntohs(a.sin_port);
    }
    if (fd >= 0) ::close(fd);
    return port;
  }

 private:
  std::filesystem::path _dir;
  std::vector<std::string> _extra_args;
  int _port = 0;
  pid_t _pid = -1;
};

}  // namespace esflow::nats::testing
