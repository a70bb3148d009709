#pragma once
// A local HTTP receiver of effect calls for the runner tests: POST /hook on
// 127.0.0.1 (a free port); counts calls, records their headers and bodies,
// answers with `respond(call number, response)`.
#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace esflow::runner_hooks {

using namespace std::chrono_literals;
class receiver {
 public:
  struct request {
    std::string idempotency_key, authorization, content_type, traceparent, correlation_id, body;
  };
  using respond_fn = std::function<void(int, httplib::Response&)>;

  explicit receiver(respond_fn respond) : _respond(std::move(respond)) {
    _server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      int n = 0;
      respond_fn reply;
      {
        std::lock_guard lock(_mutex);
        _requests.push_back({req.get_header_value("Idempotency-Key"), req.get_header_value("Authorization"),
                             req.get_header_value("Content-Type"), req.get_header_value("traceparent"),
                             req.get_header_value("x-correlation-id"), req.body});
        n = static_cast<int>(_requests.size());
        reply = _respond;
      }
      reply(n, res);
    });
    _port = _server.bind_to_any_port("127.0.0.1");
    _thread = std::thread([this] { _server.listen_after_bind(); });
    for (int i = 0; i < 500 && !_server.is_running(); ++i) std::this_thread::sleep_for(10ms);
  }
  ~receiver() {
    _server.stop();
    _thread.join();
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(_port) + "/hook"; }
  int calls() const {
    std::lock_guard lock(_mutex);
    return static_cast<int>(_requests.size());
  }
  std::vector<request> requests() const {
    std::lock_guard lock(_mutex);
    return _requests;
  }
  void set_respond(respond_fn respond) {
    std::lock_guard lock(_mutex);
    _respond = std::move(respond);
  }

 private:
  httplib::Server _server;
  int _port = 0;
  std::thread _thread;
  mutable std::mutex _mutex;
  std::vector<request> _requests;
  respond_fn _respond;
};

inline receiver::respond_fn answer(int status, std::string body = R"({"ok":true})") {
  return [status, body](int, httplib::Response& res) {
    res.status = status;
    res.set_content(body, "application/json");
  };
}

// Calls per Idempotency-Key.
inline std::map<std::string, int> calls_per_key(const receiver& r) {
  std::map<std::string, int> n;
  for (const auto& q : r.requests()) ++n[q.idempotency_key];
  return n;
}

}  // namespace esflow::runner_hooks
