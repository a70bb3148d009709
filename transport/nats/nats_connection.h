#pragma once
// One NATS connection of the node: connect with reconnect and exponential
// backoff, a bounded reconnect buffer, SendAsap (no 1 ms flusher delay on
// replies and acks), and a circuit breaker over the connection state.
//
// Circuit breaker: while the connection is up, or has been down for less
// than `breaker_open_after`, operations go ahead (publishes land in the
// reconnect buffer and complete when the link returns or their MaxWait
// expires). Once the outage lasts longer, the breaker is open: check()
// fails at once with errc::unavailable, so callers fail fast instead of
// queueing behind a dead link. The reconnected callback closes it again:
// recovery needs nobody's help.
//
// NOTE: thread-safe. nats.c calls the status callbacks on its own threads;
//       they only flip atomics.
// NOTE: nats_Open(-1) is called once per process by connect().
// NOTE: close() drains (bounded) then closes; the object must outlive every
//       jsCtx made from it (destroy those first).
#include "common/result.h"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace esflow::nats {

struct connection_options {
  // One server, or several separated by commas (a cluster: failover between them).
  std::string url = "nats://127.0.0.1:4222";
  std::string name = "esflow";
  std::chrono::milliseconds connect_timeout{2000};
  // Reconnect forever, waiting reconnect_wait_min * 2^(attempt-1), at most
  // reconnect_wait_max, plus up to 20% jitter.
  std::chrono::milliseconds reconnect_wait_min{50};
  std::chrono::milliseconds reconnect_wait_max{2000};
  // Bytes buffered while reconnecting; beyond it publishes fail at once.
  int reconnect_buffer_bytes = 8 << 20;
  std::chrono::milliseconds breaker_open_after{1000};
  std::chrono::milliseconds ping_interval{2000};
  int max_pings_out = 2;
  std::chrono::milliseconds drain_timeout{5000};
};

enum class link_state : std::uint8_t { connected, reconnecting, closed };
std::string_view to_string(link_state s) noexcept;

struct connection_status {
  link_state state = link_state::closed;
  bool breaker_open = false;
  std::string url;        // as configured
  std::string server_id;  // of the server connected to ("" when down)
  std::uint64_t disconnects = 0;
  std::uint64_t reconnects = 0;
  std::int64_t down_for_ms = 0;  // 0 while connected
};

class nats_connection {
 public:
  // Connects (one attempt, bounded by connect_timeout): errc::unavailable
  // naming the URL when no server answers.
  static result<std::unique_ptr<nats_connection>> connect(connection_options options);
  ~nats_connection();
  nats_connection(const nats_connection&) = delete;
  nats_connection& operator=(const nats_connection&) = delete;

  natsConnection* raw() const noexcept { return _nc; }
  const connection_options& options() const noexcept { return _options; }

  // ok while operations may go ahead; errc::unavailable once the breaker is
  // open or the connection is closed.
  status check() const;
  bool breaker_open() const;
  bool connected() const noexcept { return _up.load(std::memory_order_acquire); }
  connection_status link_status() const;  // for /ready and /info

  // A JetStream context on this connection (caller destroys it with
  // jsCtx_Destroy before the connection goes away).
  result<jsCtx*> jetstream(jsOptions& options) const;

  // Calls `fn` on nats.c's thread at every disconnect (fn must not block):
  // owners of in-flight work fail it at once instead of waiting for a timer.
  // The id removes it; remove before whatever fn uses goes away.
  std::uint64_t add_disconnect_listener(std::function<void()> fn);
  void remove_disconnect_listener(std::uint64_t id);

  // Drains (bounded by drain_timeout), then closes. Idempotent.
  void close();

 private:
  explicit nats_connection(connection_options o) : _options(std::move(o)) {}
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);
  static void on_closed(natsConnection* nc, void* self);
  static std::int64_t reconnect_delay(natsConnection* nc, int attempts, void* self);
  static std::int64_t now_ms();

  connection_options _options;
  natsConnection* _nc = nullptr;
  std::atomic<bool> _up{false};
  std::atomic<bool> _closed{false};
  std::atomic<bool> _closed_cb_ran{false};
  std::atomic<std::int64_t> _down_since_ms{0};
  std::atomic<std::uint64_t> _disconnects{0}, _reconnects{0};
  std::mutex _listeners_mu;
  std::map<std::uint64_t, std::function<void()>> _listeners;  // guarded by _listeners_mu
  std::uint64_t _next_listener = 1;                           // guarded by _listeners_mu
};

// errc::unavailable with the nats.c status text (and last error).
error nats_error(natsStatus s, std::string_view what, std::string ctx = {});

}  // namespace esflow::nats
