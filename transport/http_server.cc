#include "transport/http_server.h"

#include "common/log.h"
#include "graph/params.h"

#include <cerrno>
#include <chrono>
#include <sys/socket.h>
#include <thread>

namespace esflow::transport {

std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  auto port = graph::parse_integer(listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) return std::nullopt;
  return std::make_pair(listen.substr(0, colon), static_cast<int>(*port));
}

namespace {
// cpp-httplib 0.11 listens with a compiled-in backlog of 5: a burst of new
// keep-alive clients overflows it and waits for a SYN retransmit (1 s).
constexpr int k_listen_backlog = 1024;
}  // namespace

http_server::http_server(std::string listen) : _listen(std::move(listen)) {
  // Record the listening socket so start() can widen its backlog.
  _server.set_socket_options([fd = _listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    fd->store(sock);
  });
  // Small request/response pairs on keep-alive connections: no Nagle delay.
  _server.set_tcp_nodelay(true);
  _server.set_keep_alive_max_count(1000);
  _server.set_read_timeout(5, 0);
  _server.set_write_timeout(5, 0);
}

http_server::~http_server() { stop(); }

status http_server::start() {
  auto addr = parse_listen_address(_listen);
  if (!addr)
    return error::make(errc::invalid_config, "bad listen address '" + _listen + "' (want host:port)");
  _host = addr->first;
  if (addr->second == 0) {
    _port = _server.bind_to_any_port(_host);
  } else {
    _port = _server.bind_to_port(_host, addr->second) ? addr->second : -1;
  }
  if (_port <= 0)
    return error::make(errc::unavailable, "cannot listen on " + _listen + " (address in use or not local)");
  // listen() again on a listening socket only resizes its backlog.
  if (const int fd = _listen_fd->load(); fd >= 0 && ::listen(fd, k_listen_backlog) != 0)
    ESFLOW_WARN("http", "could not widen the listen backlog: errno {}", errno);
  _thread = std::thread([this] { _server.listen_after_bind(); });
  // cpp-httplib's stop() does nothing until the listen loop runs: a stop right
  // after start (a bench pipeline that ends in a millisecond) would leave the
  // loop running and the join hanging. Bounded wait for it to run.
  for (int i = 0; i < 5000 && !_server.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ESFLOW_INFO("http", "listening on {}", url());
  return {};
}

void http_server::stop() {
  if (_thread.joinable()) {
    _server.stop();
    _thread.join();
  }
}

}  // namespace esflow::transport
