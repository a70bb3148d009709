#pragma once
// nats_requests: asynchronous NATS request/reply for the gateway's commands
// (docs/contract.md "NATS subjects": `tenant.<t>.command.<type>.<id>`,
// answered with a CommandResult).
//
// Why not nats.c's natsConnection_RequestMsg (as stages/runner/remote_commands
// does on its own thread pool): it blocks its caller until the answer, so
// every waiting command would hold a thread. Here one wildcard subscription
// on `_INBOX.<nuid>.*` receives every answer; each request publishes with the
// reply subject `_INBOX.<nuid>.<token>` and waits in a map of pending
// requests, and the timer (timer_thread.h) fails it at its deadline. This is
// the "new style" request of the NATS clients, without its blocking wait.
//
// Answers: a reply -> its body; the server's "no responders" status (nats.c
// natsMsg_IsNoResponders: nobody subscribes to the subject) -> no_responders
// set; the deadline -> deadline_exceeded; a publish that fails, the
// connection's breaker open, `max_in_flight` requests already waiting or a
// stopped object -> unavailable, at once.
//
// NOTE: thread-safe. `done` runs exactly once: on nats.c's delivery thread of
//       the inbox subscription (an answer), the timer's thread (the
//       deadline), or the caller's (refused at once). It must not block.
// NOTE: lifetime: stop() (also the destructor) unsubscribes and answers every
//       pending request `unavailable`; the connection and the timer must
//       outlive this object.
#include "common/result.h"
#include "schemas/envelopes.h"
#include "stages/gateway/timer_thread.h"

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace esflow::nats {
class nats_connection;
}

namespace esflow::gateway {

struct nats_request {
  std::string subject;
  std::string body;
  std::string tenant;  // the tenant-id header ("" -> "_")
  schemas::trace_context trace;
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (e.g. Idempotency-Key)
};

struct nats_reply {
  bool no_responders = false;
  std::string body;
};

class nats_requests {
 public:
  using clock = timer_thread::clock;
  using callback = std::function<void(result<nats_reply>)>;

  // Subscribes the inbox; unavailable when the subscription fails.
  static result<std::unique_ptr<nats_requests>> start(std::shared_ptr<nats::nats_connection> conn,
                                                      timer_thread& timer, std::size_t max_in_flight);
  ~nats_requests();
  nats_requests(const nats_requests&) = delete;
  nats_requests& operator=(const nats_requests&) = delete;

  void request(const nats_request& r, clock::time_point deadline, callback done);
  void stop();

  std::size_t in_flight() const;
  const std::string& inbox() const noexcept { return _prefix; }

 private:
  struct pending {
    callback done;
    timer_thread::id timer = 0;
  };
  nats_requests(std::shared_ptr<nats::nats_connection> conn, timer_thread& timer, std::size_t max);
  static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure);
  static void on_complete(void* closure);
  void answer(natsMsg* msg);
  // Removes a pending request; its callback, or empty when already answered.
  callback take(std::uint64_t token, bool cancel_timer);

  std::shared_ptr<nats::nats_connection> _conn;
  timer_thread& _timer;
  std::size_t _max_in_flight;
  std::string _prefix;  // "_INBOX.<nuid>"
  natsSubscription* _sub = nullptr;
  mutable std::mutex _mu;
  std::unordered_map<std::uint64_t, pending> _pending;  // guarded by _mu
  std::uint64_t _next = 1;                              // guarded by _mu
  bool _stopped = false;                                // guarded by _mu
  // The subscription's closure: this object until stop(), then nothing (a
  // late delivery finds nullptr). Shared with nats.c: a heap shared_ptr is
  // the closure, deleted by its on-complete callback (which may come first,
  // when the connection closes).
  struct closure_box {
    std::mutex mu;
    nats_requests* self = nullptr;
  };
  std::shared_ptr<closure_box> _box;
};

}  // namespace esflow::gateway
