#pragma once
// remote_commands: the outbox relay's way to an aggregate node in another
// process — NATS request/reply on `tenant.<t>.command.<type>.<id>`
// (docs/contract.md "NATS subjects"), answered with a CommandResult.
//
// nats.c's request call blocks, so requests run on this object's own small
// thread pool (never a TBB worker), with a bounded queue: a full queue
// answers `unavailable` at once. Answers: ok = the accepted CommandResult
// JSON; a rejection = its code (the program's own codes as
// domain_rejection with code_text); no responders, a timeout or a
// connection problem = `unavailable` (the relay retries with the same id).
//
// NOTE: thread-safe; done runs exactly once, on a pool thread or (refused)
//       on the caller's; it must not block.
#include "common/result.h"
#include "schemas/envelopes.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace esflow::nats {
class nats_connection;
}

namespace esflow::runner {

struct remote_command {
  std::string tenant;
  std::string aggregate_type;
  std::string aggregate_id;
  std::string body;  // the Command envelope
  schemas::trace_context trace;
};

class remote_commands {
 public:
  using answer_callback = std::function<void(result<std::string>)>;

  remote_commands(std::shared_ptr<nats::nats_connection> conn, std::chrono::milliseconds timeout,
                  std::size_t threads = 8, std::size_t max_pending = 1024);
  ~remote_commands();
  remote_commands(const remote_commands&) = delete;
  remote_commands& operator=(const remote_commands&) = delete;

  void submit(remote_command c, answer_callback done);
  void stop();

 private:
  struct job {
    remote_command c;
    answer_callback done;
  };
  void loop();
  result<std::string> request(const remote_command& c);

  std::shared_ptr<nats::nats_connection> _conn;
  std::chrono::milliseconds _timeout;
  std::size_t _max_pending;
  std::mutex _mu;
  std::condition_variable _cv;
  std::deque<job> _queue;
  bool _stopping = false;
  std::vector<std::thread> _threads;
};

// A CommandResult's rejection as an error (its code mapped back to errc).
error rejection_of(const std::string& code, const std::string& message);

}  // namespace esflow::runner
