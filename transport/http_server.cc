#include "transport/http_server.h"

#include "common/log.h"
#include "graph/params.h"
#include "schemas/ids.h"
#include "schemas/json_encode.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::transport {

std::optional<std::pair<std::string, int>> parse_listen_address(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  auto port = graph::parse_integer(listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) return std::nullopt;
  return std::make_pair(listen.substr(0, colon), static_cast<int>(*port));
}

struct http_shared {
  std::atomic<std::size_t> workers{0};
  std::atomic<std::size_t> threads{0};
  std::atomic<std::size_t> busy{0};
  std::atomic<std::size_t> queued{0};
  std::atomic<std::size_t> yielding{0};  // workers closing a keep-alive connection for a queued one
  std::atomic<std::size_t> commands{0};
  std::atomic<std::size_t> command_limit{0};
  std::atomic<std::uint64_t> rejected_queue{0};
  std::atomic<std::uint64_t> rejected_commands{0};
};

namespace {

// cpp-httplib 0.11 listens with a compiled-in backlog of 5: a burst of new
// keep-alive clients overflows it and waits for a SYN retransmit (1 s).
constexpr int k_listen_backlog = 1024;
// Connections the refuser may hold; beyond that the accept thread answers
// itself (without waiting for the request to arrive).
constexpr std::size_t k_refuse_queue = 256;
// How long the refuser waits for a refused client's request bytes, so that
// closing does not reset the connection before the client read its 503.
constexpr auto k_refuse_linger = std::chrono::milliseconds(200);
// How often an idle keep-alive worker looks at the queue and the stop flag.
constexpr int k_idle_poll_ms = 10;

// Which job a thread runs: a worker serves the connection, a refuser answers
// 503 without serving it (the TaskQueue only hands over an opaque job, so the
// role travels in a thread-local to process_and_close_socket).
enum class role { worker, refuse_linger, refuse_now };
thread_local role t_role = role::worker;
// This worker closed its keep-alive connection for a queued one (counted in
// http_shared::yielding until it takes the next job).
thread_local bool t_yielded = false;

// One worker per queued connection gives its connection up: a single
// /health behind 64 keep-alive clients must not close all 64.
bool claim_yield(http_shared& s) {
  if (t_yielded) return true;
  auto y = s.yielding.load();
  while (s.queued.load() > y)
    if (s.yielding.compare_exchange_weak(y, y + 1)) return t_yielded = true;
  return false;
}

void name_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

// ---- the pool: `workers` threads, at most `queue` waiting connections ------------

class worker_pool final : public httplib::TaskQueue {
 public:
  worker_pool(std::shared_ptr<http_shared> shared, std::size_t workers, std::size_t queue)
      : _shared(std::move(shared)), _queue_cap(queue) {
    for (std::size_t i = 0; i < workers; ++i) _threads.emplace_back([this] { work(); });
    _threads.emplace_back([this] { refuse(); });
    _shared->workers.store(workers);
  }
  ~worker_pool() override = default;

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(_mu);
      if (_jobs.size() < _queue_cap || _idle > _jobs.size()) {
        _jobs.push_back(std::move(fn));
        _shared->queued.store(_jobs.size());
        _work_cv.notify_one();
        return;
      }
      _shared->rejected_queue.fetch_add(1);
      if (_refusals.size() < k_refuse_queue) {
        _refusals.push_back(std::move(fn));
        _refuse_cv.notify_one();
        return;
      }
    }
    // Even the refuser is behind: answer here, never queue without bound.
    t_role = role::refuse_now;
    fn();
    t_role = role::worker;
  }

  void shutdown() override {
    {
      std::lock_guard lock(_mu);
      _shutdown = true;
    }
    _work_cv.notify_all();
    _refuse_cv.notify_all();
    for (auto& t : _threads) t.join();
    _shared->workers.store(0);
  }

 private:
  // Counts the pool's live threads for stats().threads.
  struct thread_count {
    explicit thread_count(std::atomic<std::size_t>& n) : n(n) { n.fetch_add(1); }
    ~thread_count() { n.fetch_sub(1); }
    std::atomic<std::size_t>& n;
  };

  void work() {
    name_thread("esflow-http-w");
    const thread_count counted(_shared->threads);
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(_mu);
        ++_idle;
        _work_cv.wait(lock, [&] { return !_jobs.empty() || _shutdown; });
        --_idle;
        // Jobs left at shutdown still run: each closes its socket (the
        // server's socket is gone, so none serves a request).
        if (_jobs.empty()) return;
        fn = std::move(_jobs.front());
        _jobs.pop_front();
        _shared->queued.store(_jobs.size());
        if (t_yielded) {
          t_yielded = false;
          _shared->yielding.fetch_sub(1);
        }
      }
      _shared->busy.fetch_add(1);
      fn();
      _shared->busy.fetch_sub(1);
    }
  }

  void refuse() {
    name_thread("esflow-http-rf");
    const thread_count counted(_shared->threads);
    t_role = role::refuse_linger;
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(_mu);
        _refuse_cv.wait(lock, [&] { return !_refusals.empty() || _shutdown; });
        if (_refusals.empty()) return;
        fn = std::move(_refusals.front());
        _refusals.pop_front();
      }
      fn();
    }
  }

  std::shared_ptr<http_shared> _shared;
  const std::size_t _queue_cap;
  std::vector<std::thread> _threads;
  std::mutex _mu;
  std::condition_variable _work_cv, _refuse_cv;
  std::deque<std::function<void()>> _jobs, _refusals;  // guarded by _mu
  std::size_t _idle = 0;                               // guarded by _mu
  bool _shutdown = false;                              // guarded by _mu
};

// ---- a connection's stream (what httplib's own SocketStream does) -----------------

int poll_one(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r;
}

int to_ms(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

class socket_stream final : public httplib::Stream {
 public:
  socket_stream(int fd, int read_timeout_ms, int write_timeout_ms)
      : _fd(fd), _read_ms(read_timeout_ms), _write_ms(write_timeout_ms) {}

  bool buffered() const { return _off < _len; }
  bool is_readable() const override { return buffered() || poll_one(_fd, POLLIN, _read_ms) > 0; }
  bool is_writable() const override { return poll_one(_fd, POLLOUT, _write_ms) > 0 && alive(); }

  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (poll_one(_fd, POLLIN, _read_ms) <= 0) return -1;
      ssize_t n = 0;
      // Body reads are large: straight into the caller's buffer.
      if (size >= sizeof(_buf)) {
        do {
          n = ::recv(_fd, ptr, size, 0);
        } while (n < 0 && errno == EINTR);
        return n;
      }
      // httplib reads request lines byte by byte: buffer the socket.
      do {
        n = ::recv(_fd, _buf, sizeof(_buf), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      _off = 0;
      _len = static_cast<std::size_t>(n);
    }
    const auto take = std::min(size, _len - _off);
    std::memcpy(ptr, _buf + _off, take);
    _off += take;
    return static_cast<ssize_t>(take);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n = 0;
    do {
      n = ::send(_fd, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return _fd; }

 private:
  bool alive() const {
    if (poll_one(_fd, POLLIN, 0) <= 0) return true;
    char c = 0;
    return ::recv(_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }
  void address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (get(_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int _fd;
  int _read_ms, _write_ms;
  char _buf[4096];
  std::size_t _off = 0, _len = 0;
};

// The 503 of a connection no worker will serve: the contract's rejection
// envelope (docs/contract.md "Rejection codes": `unavailable`, a bounded
// queue full, with Retry-After) with the headers every answer carries.
std::string refusal_response() {
  const auto body = schemas::encode_command_result(schemas::make_rejection(
      error::make(errc::unavailable,
                  "the HTTP server is at capacity (every worker busy, the accept queue full); retry later")));
  const auto trace = schemas::make_trace_context({}, {});
  std::string out = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Retry-After: " + std::to_string(http_server::retry_after_seconds) + "\r\n";
  out += "Connection: close\r\ntenant-id: _\r\n";
  out += "x-correlation-id: " + trace.correlation_id + "\r\ntraceparent: " + trace.traceparent + "\r\n\r\n";
  return out + body;
}

// ---- the server: httplib's request handling on our connection loop -------------------

class bounded_server final : public httplib::Server {
 public:
  explicit bounded_server(std::shared_ptr<http_shared> shared) : _shared(std::move(shared)) {}

 private:
  // httplib's listen loop hands every accepted socket here (through the task
  // queue). Overridden for the socket: a refused connection is answered
  // without a worker, and an idle keep-alive connection gives its worker back
  // when others wait.
  bool process_and_close_socket(socket_t sock) override {
    if (t_role == role::worker && svr_sock_ != INVALID_SOCKET) {
      serve(sock);
    } else if (svr_sock_ != INVALID_SOCKET) {
      refuse(sock, t_role == role::refuse_linger);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
  }

  void serve(int sock) {
    socket_stream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_),
                       to_ms(write_timeout_sec_, write_timeout_usec_));
    for (std::size_t count = keep_alive_max_count_; count > 0; --count) {
      if (!next_request(strm, count == keep_alive_max_count_)) return;
      // Last allowed request, or connections wait for a worker: answer with
      // `Connection: close` and free this worker.
      const bool close = count == 1 || claim_yield(*_shared);
      bool closed = false;
      if (!process_request(strm, close, closed, nullptr) || closed || close) return;
    }
  }

  // Waits for the next request's first bytes. A kept-alive connection
  // (not `first`) gives up its worker at once when connections are queued.
  bool next_request(socket_stream& strm, bool first) {
    if (strm.buffered()) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    for (;;) {
      const int r = poll_one(strm.socket(), POLLIN, k_idle_poll_ms);
      if (r != 0) return r > 0;
      if (svr_sock_ == INVALID_SOCKET) return false;
      if (!first && claim_yield(*_shared)) return false;
      if (std::chrono::steady_clock::now() >= deadline) return false;
    }
  }

  static void refuse(int sock, bool linger) {
    const auto out = refusal_response();
    ::send(sock, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(sock, SHUT_WR);
    if (!linger) return;
    // Read and drop what the client sends until it closes (it read the 503):
    // closing with unread bytes would reset the connection under its answer.
    const auto deadline = std::chrono::steady_clock::now() + k_refuse_linger;
    char sink[4096];
    for (int i = 0; i < 64; ++i) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || poll_one(sock, POLLIN, static_cast<int>(left.count())) <= 0) return;
      if (::recv(sock, sink, sizeof(sink), MSG_DONTWAIT) <= 0) return;
    }
  }

  std::shared_ptr<http_shared> _shared;
};

}  // namespace

// ---- http_server -------------------------------------------------------------------

http_server::http_server(std::string listen)
    : _listen(std::move(listen)),
      _shared(std::make_shared<http_shared>()),
      _server(std::make_unique<bounded_server>(_shared)) {
  // Record the listening socket so start() can widen its backlog.
  _server->set_socket_options([fd = _listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    fd->store(sock);
  });
  // Small request/response pairs on keep-alive connections: no Nagle delay.
  _server->set_tcp_nodelay(true);
  _server->set_read_timeout(5, 0);
  _server->set_write_timeout(5, 0);
}

http_server::~http_server() { stop(); }

status http_server::configure(const http_limits& limits) {
  if (limits.workers == 0 || limits.reserved >= limits.workers)
    return error::make(errc::invalid_config, "HTTP server: " + std::to_string(limits.reserved) +
                                                 " reserved workers leave none of " +
                                                 std::to_string(limits.workers) + " for commands");
  if (_thread.joinable())
    return error::make(errc::invalid_config, "HTTP server limits must be set before it starts");
  if (!_configured) {
    _limits = limits;
    _configured = true;
    return {};
  }
  _limits.workers = std::max(_limits.workers, limits.workers);
  _limits.queue = std::max(_limits.queue, limits.queue);
  _limits.reserved = std::max(_limits.reserved, limits.reserved);
  _limits.keep_alive_max = std::max(_limits.keep_alive_max, limits.keep_alive_max);
  _limits.keep_alive_timeout = std::max(_limits.keep_alive_timeout, limits.keep_alive_timeout);
  return {};
}

status http_server::start() {
  auto addr = parse_listen_address(_listen);
  if (!addr)
    return error::make(errc::invalid_config, "bad listen address '" + _listen + "' (want host:port)");
  _host = addr->first;
  if (addr->second == 0) {
    _port = _server->bind_to_any_port(_host);
  } else {
    _port = _server->bind_to_port(_host, addr->second) ? addr->second : -1;
  }
  if (_port <= 0)
    return error::make(errc::unavailable, "cannot listen on " + _listen + " (address in use or not local)");
  // listen() again on a listening socket only resizes its backlog.
  if (const int fd = _listen_fd->load(); fd >= 0 && ::listen(fd, k_listen_backlog) != 0)
    ESFLOW_WARN("http", "could not widen the listen backlog: errno {}", errno);
  _server->set_keep_alive_max_count(std::max<std::size_t>(1, _limits.keep_alive_max));
  _server->set_keep_alive_timeout(static_cast<time_t>(_limits.keep_alive_timeout.count()));
  _shared->command_limit.store(_limits.workers - _limits.reserved);
  _server->new_task_queue = [shared = _shared, limits = _limits] {
    return new worker_pool(shared, limits.workers, limits.queue);
  };
  _thread = std::thread([this] {
    name_thread("esflow-http-l");
    _server->listen_after_bind();
  });
  // cpp-httplib's stop() does nothing until the listen loop runs: a stop right
  // after start (a bench pipeline that ends in a millisecond) would leave the
  // loop running and the join hanging. Bounded wait for it to run.
  for (int i = 0; i < 5000 && !_server->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ESFLOW_INFO("http", "listening on {} ({} workers, {} reserved, queue {})", url(), _limits.workers,
              _limits.reserved, _limits.queue);
  return {};
}

void http_server::stop() {
  if (_thread.joinable()) {
    _server->stop();
    _thread.join();
  }
}

http_stats http_server::stats() const {
  http_stats s;
  s.workers = _shared->workers.load();
  s.threads = _shared->threads.load();
  s.busy = _shared->busy.load();
  s.queued = _shared->queued.load();
  s.commands = _shared->commands.load();
  s.command_limit = _shared->command_limit.load();
  s.rejected_queue = _shared->rejected_queue.load();
  s.rejected_commands = _shared->rejected_commands.load();
  return s;
}

http_server::command_slot http_server::try_command_slot() {
  auto& s = *_shared;
  if (s.commands.fetch_add(1) >= s.command_limit.load()) {
    s.commands.fetch_sub(1);
    s.rejected_commands.fetch_add(1);
    return {};
  }
  return command_slot(_shared);
}

http_server::command_slot& http_server::command_slot::operator=(command_slot&& other) noexcept {
  if (this != &other) {
    if (_shared) _shared->commands.fetch_sub(1);
    _shared = std::move(other._shared);
  }
  return *this;
}

http_server::command_slot::~command_slot() {
  if (_shared) _shared->commands.fetch_sub(1);
}

}  // namespace esflow::transport
