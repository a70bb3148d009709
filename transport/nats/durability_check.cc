#include "transport/nats/durability_check.h"

#include "transport/nats/nats_connection.h"

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace esflow::nats {
namespace {

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

error unavailable(const std::string& msg, const std::string& url) {
  return error::make(errc::unavailable, msg, "url=" + url);
}

}  // namespace

result<std::string> read_server_version(const std::string& url) {
  std::string_view rest = url;
  if (auto p = rest.find("://"); p != std::string_view::npos) rest = rest.substr(p + 3);
  if (auto p = rest.find(','); p != std::string_view::npos) rest = rest.substr(0, p);
  if (auto p = rest.rfind('@'); p != std::string_view::npos) rest = rest.substr(p + 1);
  std::string host(rest), port = "4222";
  if (auto p = rest.rfind(':'); p != std::string_view::npos) {
    host = std::string(rest.substr(0, p));
    port = std::string(rest.substr(p + 1));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0 || ai == nullptr) {
    return unavailable("cannot resolve NATS host", url);
  }
  fd_guard g;
  g.fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  int rc = g.fd < 0 ? -1 : ::connect(g.fd, ai->ai_addr, ai->ai_addrlen);
  ::freeaddrinfo(ai);
  if (rc != 0) return unavailable("cannot connect to NATS for INFO", url);
  std::string line;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char buf[1024];
  while (line.find('\n') == std::string::npos && line.size() < 65536) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return unavailable("timed out reading INFO", url);
    pollfd pfd{g.fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    auto n = ::read(g.fd, buf, sizeof(buf));
    if (n <= 0) return unavailable("connection closed before INFO", url);
    line.append(buf, static_cast<std::size_t>(n));
  }
  auto key = line.find("\"version\":\"");
  if (!line.starts_with("INFO ") || key == std::string::npos) return unavailable("no version in INFO", url);
  auto start = key + 11;
  auto end = line.find('"', start);
  if (end == std::string::npos) return unavailable("malformed INFO", url);
  return line.substr(start, end - start);
}

result<durability_report> check_durability(const std::string& url, jsCtx* js, const std::string& stream) {
  durability_report r;
  auto v = read_server_version(url);
  if (!v.ok()) return std::move(v).err();
  r.server_version = *v;
  std::sscanf(r.server_version.c_str(), "%d.%d.%d", &r.major, &r.minor, &r.patch);
  r.fsync_capable = r.major > 2 || (r.major == 2 && r.minor >= 10);

  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto s = js_GetStreamInfo(&info, js, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) return nats_error(s, "reading stream info", "stream=" + stream);
  r.replicas = static_cast<long>(info->Config->Replicas);
  jsStreamInfo_Destroy(info);
  r.replicated = r.replicas > 1;

  std::string fs = r.fsync_capable ? "fsync per ack possible (server sync_interval: operator's setting)"
                                   : "not fsync-durable (server has no sync_interval; data is fsynced "
                                     "in the background every 2 min)";
  std::string rep = r.replicated ? "replicated R=" + std::to_string(r.replicas)
                                 : "not replicated (R=" + std::to_string(r.replicas) + ")";
  r.description = "nats-server " + r.server_version + ", stream " + stream + ": " + fs + ", " + rep;
  if (!r.fsync_capable && !r.replicated) {
    r.warning = "acknowledged commits in " + stream +
                " are neither fsynced nor replicated: a machine crash of the NATS host can lose the "
                "last ones (use R=3, or nats-server >= 2.10 with sync_interval: always)";
  }
  return r;
}

}  // namespace esflow::nats
