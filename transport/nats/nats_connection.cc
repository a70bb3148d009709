#include "transport/nats/nats_connection.h"

#include "common/log.h"

#include <mutex>
#include <random>
#include <vector>

namespace esflow::nats {
namespace {

std::once_flag nats_open_once;

struct options_guard {
  natsOptions* o = nullptr;
  ~options_guard() {
    if (o != nullptr) natsOptions_Destroy(o);
  }
};

}  // namespace

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::connected:
      return "connected";
    case link_state::reconnecting:
      return "reconnecting";
    case link_state::closed:
      return "closed";
  }
  return "closed";
}

error nats_error(natsStatus s, std::string_view what, std::string ctx) {
  std::string msg(what);
  msg += ": ";
  msg += natsStatus_GetText(s);
  return error::make(errc::unavailable, std::move(msg), std::move(ctx));
}

std::int64_t nats_connection::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

result<std::unique_ptr<nats_connection>> nats_connection::connect(connection_options options) {
  // nats.c's default lock spinning: without it (nats_Open(0)) the gateway
  // used ~8% less CPU but the node over NATS answered ~13% fewer commands
  // (bench/RESULTS.md, run of a32f4b4).
  std::call_once(nats_open_once, [] { nats_Open(-1); });
  std::unique_ptr<nats_connection> self(new nats_connection(std::move(options)));
  const auto& o = self->_options;
  options_guard g;
  natsStatus s = natsOptions_Create(&g.o);
  auto step = [&](natsStatus st) {
    if (s == NATS_OK) s = st;
  };
  // A comma-separated list names the servers of a cluster (the client fails over).
  std::vector<std::string> servers;
  for (std::size_t start = 0; start <= o.url.size();) {
    auto end = o.url.find(',', start);
    if (end == std::string::npos) end = o.url.size();
    if (end > start) servers.push_back(o.url.substr(start, end - start));
    start = end + 1;
  }
  if (servers.size() > 1) {
    std::vector<const char*> ptrs;
    for (const auto& srv : servers) ptrs.push_back(srv.c_str());
    step(natsOptions_SetServers(g.o, ptrs.data(), static_cast<int>(ptrs.size())));
  } else {
    step(natsOptions_SetURL(g.o, o.url.c_str()));
  }
  step(natsOptions_SetName(g.o, o.name.c_str()));
  step(natsOptions_SetTimeout(g.o, o.connect_timeout.count()));
  step(natsOptions_SetAllowReconnect(g.o, true));
  step(natsOptions_SetMaxReconnect(g.o, -1));
  step(natsOptions_SetCustomReconnectDelay(g.o, &nats_connection::reconnect_delay, self.get()));
  step(natsOptions_SetReconnectBufSize(g.o, o.reconnect_buffer_bytes));
  step(natsOptions_SetSendAsap(g.o, true));
  // A request (JetStream API call, direct get) issued while the link is down
  // fails at once instead of waiting for its timeout.
  step(natsOptions_SetFailRequestsOnDisconnect(g.o, true));
  step(natsOptions_SetPingInterval(g.o, o.ping_interval.count()));
  step(natsOptions_SetMaxPingsOut(g.o, o.max_pings_out));
  step(natsOptions_SetDisconnectedCB(g.o, &nats_connection::on_disconnected, self.get()));
  step(natsOptions_SetReconnectedCB(g.o, &nats_connection::on_reconnected, self.get()));
  step(natsOptions_SetClosedCB(g.o, &nats_connection::on_closed, self.get()));
  if (s != NATS_OK) return nats_error(s, "setting NATS options", "url=" + o.url);
  s = natsConnection_Connect(&self->_nc, g.o);
  if (s != NATS_OK) {
    self->_nc = nullptr;
    return nats_error(s, "connecting to NATS", "url=" + o.url);
  }
  self->_up = true;
  ESFLOW_INFO("nats", "connected to {}", o.url);
  return self;
}

nats_connection::~nats_connection() {
  close();
  if (_nc != nullptr) {
    // The closed callback runs on nats.c's callback thread and uses `this`.
    for (int i = 0; i < 1000 && !_closed_cb_ran.load(std::memory_order_acquire); ++i) nats_Sleep(1);
    natsConnection_Destroy(_nc);
  }
}

void nats_connection::on_disconnected(natsConnection*, void* p) {
  auto* self = static_cast<nats_connection*>(p);
  if (self->_up.exchange(false)) {
    self->_down_since_ms = now_ms();
    ++self->_disconnects;
  }
  std::lock_guard lock(self->_listeners_mu);
  for (auto& [id, fn] : self->_listeners) fn();
}

std::uint64_t nats_connection::add_disconnect_listener(std::function<void()> fn) {
  std::lock_guard lock(_listeners_mu);
  const auto id = _next_listener++;
  _listeners.emplace(id, std::move(fn));
  return id;
}

void nats_connection::remove_disconnect_listener(std::uint64_t id) {
  std::lock_guard lock(_listeners_mu);
  _listeners.erase(id);
}

void nats_connection::on_reconnected(natsConnection*, void* p) {
  auto* self = static_cast<nats_connection*>(p);
  ++self->_reconnects;
  self->_up = true;
  self->_down_since_ms = 0;
}

void nats_connection::on_closed(natsConnection*, void* p) {
  auto* self = static_cast<nats_connection*>(p);
  self->_closed = true;
  self->_up = false;
  self->_closed_cb_ran.store(true, std::memory_order_release);
}

std::int64_t nats_connection::reconnect_delay(natsConnection*, int attempts, void* p) {
  auto* self = static_cast<nats_connection*>(p);
  auto lo = self->_options.reconnect_wait_min.count();
  auto hi = self->_options.reconnect_wait_max.count();
  std::int64_t wait = lo;
  for (int i = 1; i < attempts && wait < hi; ++i) wait *= 2;
  if (wait > hi) wait = hi;
  thread_local std::minstd_rand rng{std::random_device{}()};
  return wait + static_cast<std::int64_t>(rng() % static_cast<unsigned>(wait / 5 + 1));
}

bool nats_connection::breaker_open() const {
  if (_closed.load(std::memory_order_acquire)) return true;
  if (_up.load(std::memory_order_acquire)) return false;
  auto since = _down_since_ms.load(std::memory_order_acquire);
  return since != 0 && now_ms() - since >= _options.breaker_open_after.count();
}

status nats_connection::check() const {
  if (_closed.load(std::memory_order_acquire)) {
    return error::make(errc::unavailable, "NATS connection is closed", "url=" + _options.url);
  }
  if (breaker_open()) {
    return error::make(errc::unavailable, "NATS unreachable (circuit open)",
                       "url=" + _options.url + " down_for_ms=" + std::to_string(now_ms() - _down_since_ms));
  }
  return {};
}

connection_status nats_connection::link_status() const {
  connection_status st;
  st.url = _options.url;
  st.disconnects = _disconnects.load();
  st.reconnects = _reconnects.load();
  st.breaker_open = breaker_open();
  if (_closed) {
    st.state = link_state::closed;
  } else if (_up) {
    st.state = link_state::connected;
    char buf[128] = {0};
    if (natsConnection_GetConnectedServerId(_nc, buf, sizeof(buf)) == NATS_OK) st.server_id = buf;
  } else {
    st.state = link_state::reconnecting;
    auto since = _down_since_ms.load();
    st.down_for_ms = since == 0 ? 0 : now_ms() - since;
  }
  return st;
}

result<jsCtx*> nats_connection::jetstream(jsOptions& options) const {
  jsCtx* js = nullptr;
  auto s = natsConnection_JetStream(&js, _nc, &options);
  if (s != NATS_OK) return nats_error(s, "creating JetStream context", "url=" + _options.url);
  return js;
}

void nats_connection::close() {
  if (_nc == nullptr || _closed.exchange(true)) return;
  if (_up.load()) {
    // Drain flushes what is buffered and lets pending replies arrive, bounded.
    if (natsConnection_DrainTimeout(_nc, _options.drain_timeout.count()) == NATS_OK) {
      auto deadline = now_ms() + _options.drain_timeout.count() + 500;
      while (!natsConnection_IsClosed(_nc) && now_ms() < deadline) {
        nats_Sleep(5);
      }
    }
  }
  natsConnection_Close(_nc);
  _up = false;
}

}  // namespace esflow::nats
