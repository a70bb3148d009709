// The HTTP server's bounds (transport/README.md "Serving limits") on real
// sockets on 127.0.0.1: a bounded accept queue whose excess is refused with
// the contract's 503, keep-alive connections that do not pin workers, and a
// keep-alive loop that serves many requests per connection.
#include "transport/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace esflow::transport {
namespace {

using namespace std::chrono_literals;

// Handlers of /block wait here until released (bounded: 10 s).
struct gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

class http_server_bounds : public ::testing::Test {
 protected:
  void start(const http_limits& limits) {
    ASSERT_TRUE(_server.configure(limits).ok());
    _server.routes().Get("/block", [this](const httplib::Request&, httplib::Response& res) {
      _gate.wait();
      res.set_content("released", "text/plain");
    });
    _server.routes().Get("/ping", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("pong", "text/plain");
    });
    ASSERT_TRUE(_server.start().ok());
  }
  void TearDown() override {
    _gate.release();
    _server.stop();
  }
  httplib::Client client() const {
    httplib::Client c(_server.url());
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(15, 0);
    return c;
  }
  std::future<httplib::Result> get_async(const std::string& path) {
    return std::async(std::launch::async, [this, path] { return client().Get(path); });
  }
  // Bounded wait (5 s) for the server's figures to reach a state.
  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred(_server.stats())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred(_server.stats());
  }

  http_server _server{"127.0.0.1:0"};
  gate _gate;
};

TEST_F(http_server_bounds, the_accept_queue_is_bounded_and_its_excess_refused_with_503) {
  start({.workers = 2, .queue = 2, .reserved = 1});
  std::vector<std::future<httplib::Result>> admitted;
  for (int i = 0; i < 2; ++i) admitted.push_back(get_async("/block"));
  ASSERT_TRUE(eventually([](const http_stats& s) { return s.busy == 2; })) << "both workers blocked";
  for (int i = 0; i < 2; ++i) admitted.push_back(get_async("/block"));
  ASSERT_TRUE(eventually([](const http_stats& s) { return s.queued == 2; })) << "two connections queued";

  // Every further connection is answered at once, by no worker.
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto r = client().Get("/ping");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->get_header_value("Retry-After"), "1");
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    EXPECT_TRUE(r->has_header("x-correlation-id"));
    EXPECT_TRUE(r->has_header("traceparent"));
    const auto j = nlohmann::json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j.value("status", ""), "rejected");
    EXPECT_EQ(j.value("code", ""), "unavailable");
    EXPECT_EQ(j.value("retryable", false), true);
  }
  EXPECT_EQ(_server.stats().rejected_queue, 5u);
  EXPECT_EQ(_server.stats().threads, 3u) << "two workers and the refuser";

  // Nothing admitted is lost: the blocked and the queued are served.
  _gate.release();
  for (auto& f : admitted) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "released");
  }
  auto r = client().Get("/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(http_server_bounds, idle_keep_alive_connections_give_their_worker_back) {
  // A keep-alive timeout far beyond the test's 1 s: only the yield frees a worker.
  start({.workers = 3, .queue = 4, .reserved = 1, .keep_alive_timeout = 30s});
  std::vector<std::unique_ptr<httplib::Client>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<httplib::Client>(_server.url()));
    idle.back()->set_keep_alive(true);
    idle.back()->set_read_timeout(5, 0);
    auto r = idle.back()->Get("/ping");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_TRUE(eventually([](const http_stats& s) { return s.busy == 3; }))
      << "every worker held by an idle connection";
  const auto start = std::chrono::steady_clock::now();
  auto r = client().Get("/ping");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // One queued connection made one worker yield, not all of them.
  ASSERT_TRUE(eventually([](const http_stats& s) { return s.busy == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(_server.stats().busy, 2u);
  // The idle clients (one of them reconnecting) are served again.
  for (auto& c : idle) {
    auto again = c->Get("/ping");
    ASSERT_TRUE(again) << httplib::to_string(again.error());
    EXPECT_EQ(again->status, 200);
  }
}

TEST_F(http_server_bounds, a_keep_alive_connection_serves_many_requests_up_to_its_max) {
  start({.workers = 2, .queue = 4, .reserved = 1, .keep_alive_max = 3});
  httplib::Client c(_server.url());
  c.set_keep_alive(true);
  c.set_read_timeout(5, 0);
  for (int i = 0; i < 10; ++i) {
    auto r = c.Get("/ping");
    ASSERT_TRUE(r) << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "pong");
    // Every third answer of a connection closes it (keep_alive_max).
    EXPECT_EQ(r->get_header_value("Connection"), i % 3 == 2 ? "close" : "") << i;
  }
}

TEST_F(http_server_bounds, command_slots_leave_the_reserved_workers) {
  start({.workers = 4, .queue = 4, .reserved = 1});
  std::vector<http_server::command_slot> slots;
  for (int i = 0; i < 3; ++i) {
    slots.push_back(_server.try_command_slot());
    EXPECT_TRUE(slots.back()) << i;
  }
  EXPECT_FALSE(_server.try_command_slot());
  EXPECT_EQ(_server.stats().rejected_commands, 1u);
  slots.pop_back();
  EXPECT_TRUE(_server.try_command_slot());
  slots.clear();
  EXPECT_EQ(_server.stats().commands, 0u);
}

TEST(http_server_config, reserved_workers_must_leave_some_for_commands) {
  http_server s("127.0.0.1:0");
  const auto st = s.configure({.workers = 4, .queue = 4, .reserved = 4});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_config);
}

}  // namespace
}  // namespace esflow::transport
