#include "stages/nats/forwarder.h"

#include "common/log.h"
#include "common/named_thread.h"
#include "transport/nats/headers.h"

#include <algorithm>
#include <vector>

namespace esflow::stages {

result<std::unique_ptr<forwarder>> forwarder::start(std::shared_ptr<nats::nats_connection> conn,
                                                    forward_options options, target_fn target_of) {
  std::unique_ptr<forwarder> f(new forwarder(std::move(conn), options, std::move(target_of)));
  natsInbox* inbox = nullptr;
  if (natsInbox_Create(&inbox) != NATS_OK)
    return error::make(errc::unavailable, "tenant.route: no inbox for forward answers");
  f->_inbox = inbox;
  natsInbox_Destroy(inbox);
  const auto wildcard = f->_inbox + ".*";
  const auto s =
      natsConnection_Subscribe(&f->_sub, f->_conn->raw(), wildcard.c_str(), &forwarder::on_answer, f.get());
  if (s != NATS_OK)
    return error::make(
        errc::unavailable,
        std::string("tenant.route: subscribing to forward answers failed: ") + natsStatus_GetText(s));
  natsSubscription_SetOnCompleteCB(
      f->_sub, [](void* done) { static_cast<std::atomic<std::size_t>*>(done)->store(1); }, &f->_answers_done);
  f->_thread = start_named_thread("route-forward", "nats", [raw = f.get()] { raw->loop(); });
  return f;
}

forwarder::~forwarder() { stop(); }

void forwarder::submit(forward_item item) {
  auto p = std::make_shared<pending_forward>();
  p->item = std::move(item);
  p->give_up_at = clock::now() + _options.retry_for;
  std::uint64_t id = 0;
  {
    std::lock_guard lock(_mu);
    if (!_stopped && _pending.size() < _options.max_pending) {
      id = _next_id++;
      _pending.emplace(id, p);
    }
  }
  if (id == 0) {
    ++_stats.refused;
    hand_back(p);
    return;
  }
  ++_stats.forwarded;
  send(id, p);
}

void forwarder::send(std::uint64_t id, const std::shared_ptr<pending_forward>& p) {
  const auto target = _target_of(p->item.tenant);
  if (!target) {
    // Owned here now: the redelivery is taken in by this node.
    {
      std::lock_guard lock(_mu);
      _pending.erase(id);
    }
    hand_back(p);
    return;
  }
  {
    std::lock_guard lock(_mu);
    p->awaiting = true;
    p->next_at = clock::now() + _options.request_timeout;
    ++p->sends;
  }
  const auto reply = _inbox + "." + std::to_string(id);
  const auto& it = p->item;
  natsMsg* msg = nullptr;
  auto s =
      natsMsg_Create(&msg, target->c_str(), reply.c_str(), it.body.data(), static_cast<int>(it.body.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(msg, k_forward_subject_header, it.subject.c_str());
  if (s == NATS_OK)
    s = natsMsgHeader_Set(msg, k_forward_sequence_header, std::to_string(it.stream_sequence).c_str());
  if (s == NATS_OK && !it.traceparent.empty())
    s = natsMsgHeader_Set(msg, nats::header::traceparent, it.traceparent.c_str());
  if (s == NATS_OK && !it.correlation_id.empty())
    s = natsMsgHeader_Set(msg, nats::header::x_correlation_id, it.correlation_id.c_str());
  if (s == NATS_OK) s = natsConnection_PublishMsg(_conn->raw(), msg);
  natsMsg_Destroy(msg);
  if (s != NATS_OK) {
    ESFLOW_DEBUG("nats", "forward of {} #{} to {} not sent: {}", it.subject, it.stream_sequence, *target,
                 natsStatus_GetText(s));
    retry_later(id);
  }
}

void forwarder::hand_back(const std::shared_ptr<pending_forward>& p) {
  ++_stats.handed_back;
  if (p->item.ack) p->item.ack->nak();
}

void forwarder::retry_later(std::uint64_t id) {
  std::lock_guard lock(_mu);
  auto it = _pending.find(id);
  if (it == _pending.end()) return;
  auto& p = *it->second;
  p.awaiting = false;
  // Doubling from backoff_min, capped: a restarting owner is asked about every backoff_max.
  const auto shift = std::min(p.sends > 0 ? p.sends - 1 : 0, 16);
  const auto backoff =
      std::min<std::chrono::milliseconds>(_options.backoff_min * (1LL << shift), _options.backoff_max);
  p.next_at = clock::now() + backoff;
  _cv.notify_one();
}

void forwarder::on_answer(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<forwarder*>(closure)->answer(msg);
  natsMsg_Destroy(msg);
}

void forwarder::answer(natsMsg* msg) {
  const std::string_view subject = natsMsg_GetSubject(msg);
  const auto dot = subject.rfind('.');
  if (dot == std::string_view::npos) return;
  std::uint64_t id = 0;
  for (char c : subject.substr(dot + 1)) {
    if (c < '0' || c > '9') return;
    id = id * 10 + static_cast<std::uint64_t>(c - '0');
  }
  // No responders (the owner is not subscribed: restarting) or `retry`: later.
  const bool ok =
      !natsMsg_IsNoResponders(msg) && nats::get_header(msg, k_forward_status_header).value_or("") == "ok";
  if (!ok) {
    retry_later(id);
    return;
  }
  std::shared_ptr<pending_forward> p;
  {
    std::lock_guard lock(_mu);
    auto it = _pending.find(id);
    if (it == _pending.end()) return;  // a late answer to a send already expired and handed back
    p = std::move(it->second);
    _pending.erase(it);
    if (_pending.empty()) _cv.notify_all();
  }
  ++_stats.confirmed;
  if (p->item.ack) p->item.ack->ack();
}

void forwarder::loop() {
  std::unique_lock lock(_mu);
  while (!_stopped) {
    _cv.wait_for(lock, std::chrono::milliseconds(20));
    if (_stopped) break;
    const auto now = clock::now();
    std::vector<std::pair<std::uint64_t, std::shared_ptr<pending_forward>>> resend, expired;
    for (auto it = _pending.begin(); it != _pending.end();) {
      auto& p = *it->second;
      if (now >= p.give_up_at && (!p.awaiting || now >= p.next_at)) {
        expired.emplace_back(it->first, std::move(it->second));
        it = _pending.erase(it);
        continue;
      }
      if (now >= p.next_at) {
        p.awaiting = true;  // claimed for a send below; a late answer settles it first
        resend.emplace_back(it->first, it->second);
      }
      ++it;
    }
    if (_pending.empty()) _cv.notify_all();
    lock.unlock();
    for (auto& [id, p] : expired) {
      ESFLOW_WARN("nats", "forward of {} #{} (tenant {}) unanswered for {} ms: handed back", p->item.subject,
                  p->item.stream_sequence, p->item.tenant, _options.retry_for.count());
      hand_back(p);
    }
    for (auto& [id, p] : resend) {
      ++_stats.resent;
      send(id, p);
    }
    lock.lock();
  }
}

bool forwarder::wait_idle(std::chrono::milliseconds within) {
  std::unique_lock lock(_mu);
  return _cv.wait_for(lock, within, [this] { return _pending.empty(); });
}

std::size_t forwarder::pending() const {
  std::lock_guard lock(_mu);
  return _pending.size();
}

void forwarder::stop() {
  std::map<std::uint64_t, std::shared_ptr<pending_forward>> left;
  {
    std::lock_guard lock(_mu);
    if (_stopped) return;
    _stopped = true;
    left.swap(_pending);
  }
  _cv.notify_all();
  ignore(join_named_thread(_thread, "a forward answer"));
  if (_sub != nullptr) {
    natsSubscription_Unsubscribe(_sub);
    // An answer callback may still run on a delivery thread: wait (bounded) for its end.
    for (int i = 0; i < 2000 && _answers_done.load() == 0; ++i) nats_Sleep(1);
    natsSubscription_Destroy(_sub);
    _sub = nullptr;
  }
  for (auto& [id, p] : left) hand_back(p);
}

}  // namespace esflow::stages
