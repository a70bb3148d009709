#include "stages/gateway/nats_requests.h"

#include "common/log.h"
#include "transport/nats/headers.h"
#include "transport/nats/nats_connection.h"

#include <charconv>

namespace esflow::gateway {

nats_requests::nats_requests(std::shared_ptr<nats::nats_connection> conn, timer_thread& timer,
                             std::size_t max)
    : _conn(std::move(conn)), _timer(timer), _max_in_flight(std::max<std::size_t>(1, max)) {}

result<std::unique_ptr<nats_requests>> nats_requests::start(std::shared_ptr<nats::nats_connection> conn,
                                                            timer_thread& timer, std::size_t max_in_flight) {
  std::unique_ptr<nats_requests> self(new nats_requests(std::move(conn), timer, max_in_flight));
  natsInbox* inbox = nullptr;
  if (auto s = natsInbox_Create(&inbox); s != NATS_OK)
    return nats::nats_error(s, "creating the gateway's inbox");
  self->_prefix = inbox;
  natsInbox_Destroy(inbox);
  self->_box = std::make_shared<closure_box>();
  self->_box->self = self.get();
  auto* closure = new std::shared_ptr<closure_box>(self->_box);
  const auto subject = self->_prefix + ".*";
  auto s = natsConnection_Subscribe(&self->_sub, self->_conn->raw(), subject.c_str(),
                                    &nats_requests::on_message, closure);
  if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(self->_sub, &nats_requests::on_complete, closure);
  // Answers may come in bursts (every waiting command at once after a stall):
  // no slow-consumer drops below these bounds.
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(self->_sub, 1 << 20, 256 << 20);
  if (s != NATS_OK) {
    self->_box->self = nullptr;
    if (self->_sub != nullptr) {
      natsSubscription_Unsubscribe(self->_sub);
      natsSubscription_Destroy(self->_sub);
      self->_sub = nullptr;
    }
    // The closure leaks when the on-complete callback was never installed: a
    // few bytes, once, on a failed start.
    return nats::nats_error(s, "subscribing the gateway's inbox " + subject);
  }
  return self;
}

nats_requests::~nats_requests() { stop(); }

void nats_requests::on_complete(void* closure) { delete static_cast<std::shared_ptr<closure_box>*>(closure); }

void nats_requests::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto& box = *static_cast<std::shared_ptr<closure_box>*>(closure);
  std::lock_guard lock(box->mu);  // stop() waits for a delivery in progress
  if (box->self != nullptr) box->self->answer(msg);
  natsMsg_Destroy(msg);
}

nats_requests::callback nats_requests::take(std::uint64_t token, bool cancel_timer) {
  std::lock_guard lock(_mu);
  const auto it = _pending.find(token);
  if (it == _pending.end()) return {};
  auto p = std::move(it->second);
  _pending.erase(it);
  if (cancel_timer && p.timer != 0) _timer.cancel(p.timer);
  return std::move(p.done);
}

void nats_requests::answer(natsMsg* msg) {
  const std::string_view subject = natsMsg_GetSubject(msg);
  const auto dot = subject.rfind('.');
  std::uint64_t token = 0;
  const auto tail = subject.substr(dot + 1);
  if (dot == std::string_view::npos ||
      std::from_chars(tail.data(), tail.data() + tail.size(), token).ec != std::errc())
    return;
  auto done = take(token, true);
  if (!done) return;  // past its deadline: already answered
  nats_reply r;
  r.no_responders = natsMsg_IsNoResponders(msg);
  if (!r.no_responders)
    r.body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  done(std::move(r));
}

void nats_requests::request(const nats_request& r, clock::time_point deadline, callback done) {
  if (auto st = _conn->check(); !st.ok()) return done(st.err());
  std::uint64_t token = 0;
  {
    std::lock_guard lock(_mu);
    if (_stopped) return done(error::make(errc::unavailable, "the gateway is stopping"));
    if (_pending.size() >= _max_in_flight)
      return done(error::make(errc::unavailable, "too many commands in flight at the gateway (" +
                                                     std::to_string(_max_in_flight) + "); retry later"));
    token = _next++;
    _pending.emplace(token, pending{std::move(done), 0});
  }
  const auto reply = _prefix + "." + std::to_string(token);
  // The deadline: whoever takes the request first (answer or timer) answers it.
  const auto tid = _timer.schedule(deadline, [this, token, subject = r.subject] {
    if (auto cb = take(token, false))
      cb(error::make(errc::deadline_exceeded, "no answer on " + subject + " before the request's deadline"));
  });
  {
    std::lock_guard lock(_mu);
    if (auto it = _pending.find(token); it != _pending.end()) it->second.timer = tid;
  }
  natsMsg* msg = nullptr;
  auto s =
      natsMsg_Create(&msg, r.subject.c_str(), reply.c_str(), r.body.data(), static_cast<int>(r.body.size()));
  status st;
  if (s != NATS_OK) {
    st = nats::nats_error(s, "creating a command message");
  } else {
    st = nats::set_common_headers(msg, r.tenant, r.trace);
    for (const auto& [k, v] : r.headers)
      if (st.ok() && natsMsgHeader_Set(msg, k.c_str(), v.c_str()) != NATS_OK)
        st = error::make(errc::internal, "setting header " + k);
    if (st.ok()) {
      s = natsConnection_PublishMsg(_conn->raw(), msg);
      if (s != NATS_OK) st = nats::nats_error(s, "publishing a command on " + r.subject);
    }
  }
  if (msg != nullptr) natsMsg_Destroy(msg);
  if (!st.ok())
    if (auto cb = take(token, true)) cb(st.err());
}

void nats_requests::stop() {
  std::unordered_map<std::uint64_t, pending> left;
  {
    std::lock_guard lock(_mu);
    if (_stopped) return;
    _stopped = true;
    left.swap(_pending);
  }
  if (_box) {
    std::lock_guard lock(_box->mu);  // waits for a delivery in progress
    _box->self = nullptr;
  }
  if (_sub != nullptr) {
    natsSubscription_Unsubscribe(_sub);
    natsSubscription_Destroy(_sub);
    _sub = nullptr;
  }
  for (auto& [token, p] : left) {
    if (p.timer != 0) _timer.cancel(p.timer);
    if (p.done) p.done(error::make(errc::unavailable, "the gateway stopped before the answer"));
  }
}

std::size_t nats_requests::in_flight() const {
  std::lock_guard lock(_mu);
  return _pending.size();
}

}  // namespace esflow::gateway
