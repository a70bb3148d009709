#include "stages/runner/remote_commands.h"

#include "common/log.h"
#include "transport/nats/headers.h"
#include "transport/nats/nats_connection.h"
#include "transport/nats/subjects.h"

#include <nats/nats.h>
#include <nlohmann/json.hpp>

namespace esflow::runner {

error rejection_of(const std::string& code, const std::string& message) {
  for (int i = static_cast<int>(errc::invalid_command); i <= static_cast<int>(errc::internal); ++i) {
    const auto e = static_cast<errc>(i);
    if (e != errc::domain_rejection && to_string(e) == code) return error::make(e, message);
  }
  auto e = error::make(errc::domain_rejection, message);
  e.code_text = code;
  return e;
}

remote_commands::remote_commands(std::shared_ptr<nats::nats_connection> conn,
                                 std::chrono::milliseconds timeout, std::size_t threads,
                                 std::size_t max_pending)
    : _conn(std::move(conn)), _timeout(timeout), _max_pending(max_pending) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i)
    _threads.emplace_back([this] { loop(); });
}

remote_commands::~remote_commands() { stop(); }

void remote_commands::submit(remote_command c, answer_callback done) {
  {
    std::lock_guard lock(_mu);
    if (!_stopping && _queue.size() < _max_pending) {
      _queue.push_back({std::move(c), std::move(done)});
      _cv.notify_one();
      return;
    }
  }
  done(error::make(errc::unavailable,
                   _stopping ? "the relay is stopping" : "too many commands waiting for NATS"));
}

void remote_commands::stop() {
  std::vector<job> left;
  {
    std::lock_guard lock(_mu);
    if (_stopping && _threads.empty()) return;
    _stopping = true;
    for (auto& j : _queue) left.push_back(std::move(j));
    _queue.clear();
  }
  _cv.notify_all();
  for (auto& t : _threads)
    if (t.joinable()) t.join();
  _threads.clear();
  for (auto& j : left) j.done(error::make(errc::unavailable, "the relay stopped"));
}

void remote_commands::loop() {
  for (;;) {
    std::unique_lock lock(_mu);
    _cv.wait(lock, [&] { return _stopping || !_queue.empty(); });
    if (_stopping) return;
    auto j = std::move(_queue.front());
    _queue.pop_front();
    lock.unlock();
    auto answer = request(j.c);
    try {
      j.done(std::move(answer));
    } catch (const std::exception& e) {
      ESFLOW_ERROR("runner", "a command answer's completion threw: {}", e.what());
    } catch (...) {
      ESFLOW_ERROR("runner", "a command answer's completion threw a non-standard exception");
    }
  }
}

result<std::string> remote_commands::request(const remote_command& c) {
  if (auto st = _conn->check(); !st.ok()) return st.err();
  const auto subject = nats::command_subject(c.tenant, c.aggregate_type, c.aggregate_id);
  natsMsg* msg = nullptr;
  auto s = natsMsg_Create(&msg, subject.c_str(), nullptr, c.body.data(), static_cast<int>(c.body.size()));
  if (s != NATS_OK) return nats::nats_error(s, "creating a command message");
  if (auto h = nats::set_common_headers(msg, c.tenant, c.trace); !h.ok()) {
    natsMsg_Destroy(msg);
    return h.err();
  }
  natsMsg* reply = nullptr;
  s = natsConnection_RequestMsg(&reply, _conn->raw(), msg, _timeout.count());
  natsMsg_Destroy(msg);
  if (s != NATS_OK) return nats::nats_error(s, "command request on " + subject);
  std::string body(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return error::make(errc::unavailable, "the answer on " + subject + " is not JSON");
  if (j.value("status", "") == "accepted") return body;
  return rejection_of(j.value("code", "internal"), j.value("message", ""));
}

}  // namespace esflow::runner
