#pragma once
// forwarder: hands a stream message of a tenant another replica owns to that
// replica (core NATS request/reply on the owner's forward subject,
// docs/contract.md "Replicas of a stateful pipeline") and settles the
// original message by the answer: acked once the owner has committed it,
// sent again with backoff while the owner does not answer (no responders: it
// is restarting; a timeout; the owner answered `retry`), handed back (nak) once
// `retry_for` has passed, when the owner is now this node, and at once when
// `max_pending` forwards are already waiting.
//
// Threads: submit() publishes on the caller's thread (never waits for the
// answer); answers arrive on nats.c's delivery thread (a map lookup, then the
// ack: no blocking); one thread of ours, "route-forward", sends the retries
// and expires requests nobody answered.
// NOTE: thread-safe. stop() (also the destructor) hands back what is still
//       pending and joins the thread; after it submit() hands back at once.
#include "stages/ingest_context.h"
#include "transport/nats/nats_connection.h"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace esflow::stages {

// Headers of a forwarded message: the stream message's subject and sequence
// travel with its body (the owner decodes it as if it had fetched it).
inline constexpr const char* k_forward_subject_header = "esflow-subject";
inline constexpr const char* k_forward_sequence_header = "esflow-stream-sequence";
// The owner's answer: "ok" (committed or finally answered: ack) or "retry".
inline constexpr const char* k_forward_status_header = "esflow-forward-status";

struct forward_item {
  std::string tenant;  // whose owner gets it
  std::string subject;
  std::uint64_t stream_sequence = 0;
  std::string body;
  std::string traceparent;
  std::string correlation_id;
  std::shared_ptr<ingest_ack> ack;  // the stream message's
};

struct forward_options {
  std::chrono::milliseconds request_timeout{2000};  // one send's wait for its answer
  std::chrono::milliseconds retry_for{20000};       // then handed back (nak)
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{1000};
  std::size_t max_pending = 8192;
};

struct forward_stats {
  std::atomic<std::uint64_t> forwarded{0}, confirmed{0}, resent{0}, handed_back{0}, refused{0};
};

class forwarder {
 public:
  // The forward subject of the tenant's owner; nullopt when this node owns
  // it now (the item is handed back, to be taken in here on redelivery).
  using target_fn = std::function<std::optional<std::string>(const std::string& tenant)>;

  // errc::unavailable when the answer subscription cannot be made.
  static result<std::unique_ptr<forwarder>> start(std::shared_ptr<nats::nats_connection> conn,
                                                  forward_options options, target_fn target_of);
  ~forwarder();
  forwarder(const forwarder&) = delete;
  forwarder& operator=(const forwarder&) = delete;

  void submit(forward_item item);
  // Waits (bounded) until nothing is pending; true when nothing is.
  bool wait_idle(std::chrono::milliseconds within);
  void stop();

  std::size_t pending() const;
  const forward_stats& stats() const noexcept { return _stats; }

 private:
  struct pending_forward {
    forward_item item;
    int sends = 0;
    std::chrono::steady_clock::time_point give_up_at;
    std::chrono::steady_clock::time_point next_at;  // answer deadline, or the next send
    bool awaiting = false;                          // sent, no answer yet
  };
  using clock = std::chrono::steady_clock;

  forwarder(std::shared_ptr<nats::nats_connection> conn, forward_options options, target_fn target_of)
      : _conn(std::move(conn)), _options(options), _target_of(std::move(target_of)) {}
  static void on_answer(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  void answer(natsMsg* msg);
  void send(std::uint64_t id, const std::shared_ptr<pending_forward>& p);
  void hand_back(const std::shared_ptr<pending_forward>& p);
  void retry_later(std::uint64_t id);
  void loop();

  std::shared_ptr<nats::nats_connection> _conn;
  forward_options _options;
  target_fn _target_of;
  std::string _inbox;  // answers come to <inbox>.<id>
  natsSubscription* _sub = nullptr;
  forward_stats _stats;

  mutable std::mutex _mu;
  std::condition_variable _cv;
  std::map<std::uint64_t, std::shared_ptr<pending_forward>> _pending;  // guarded by _mu
  std::uint64_t _next_id = 1;                                          // guarded by _mu
  bool _stopped = false;                                               // guarded by _mu
  std::thread _thread;
  std::atomic<std::size_t> _answers_done{0};
};

}  // namespace esflow::stages
