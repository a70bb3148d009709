// Live subscriptions (docs/contract.md "Projection node": subscriptions;
// docs/projection.md "Watching a view"): a watch stream receives every
// change of a matching row, in order, and only its tenant's; a client that
// does not read is closed as a slow consumer without slowing the projection;
// with NATS every row change is published on tenant.<t>.view.<view>.<key>
// with the contract's headers.
#include "tests/stages/projection/projection_node.h"

#include <nats/nats.h>

#include <arpa/inet.h>
#include <atomic>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace esflow::projection_test {
namespace {

// The `event: row` payloads of a server-sent-event stream text.
std::vector<json> row_events(const std::string& text) {
  std::vector<json> out;
  std::size_t pos = 0;
  while ((pos = text.find("event: row\n", pos)) != std::string::npos) {
    const auto data = text.find("data: ", pos);
    const auto end = text.find('\n', data);
    if (data == std::string::npos || end == std::string::npos) break;
    out.push_back(json::parse(text.substr(data + 6, end - data - 6)));
    pos = end;
  }
  return out;
}

class sse_reader {
 public:
  sse_reader(const std::string& url, const std::string& tenant, const std::string& path) {
    _client = std::make_unique<httplib::Client>(url);
    _client->set_read_timeout(30, 0);
    _thread = std::thread([this, tenant, path] {
      _client->Get(path, {{"x-tenant-id", tenant}}, [&](const char* data, std::size_t n) {
        std::lock_guard lock(_mu);
        _text.append(data, n);
        return !_stop;
      });
    });
  }
  ~sse_reader() {
    _stop = true;
    _client->stop();  // closes the socket: the reading thread returns at once
    _thread.join();
  }
  std::string text() {
    std::lock_guard lock(_mu);
    return _text;
  }
  // Waits (bounded) until `n` row events arrived.
  std::vector<json> wait_for(std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      auto rows = row_events(text());
      if (rows.size() >= n) return rows;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return row_events(text());
  }

 private:
  std::mutex _mu;
  std::string _text;
  std::atomic<bool> _stop{false};
  std::unique_ptr<httplib::Client> _client;
  std::thread _thread;
};

TEST(projection_watch, a_stream_gets_every_change_of_a_matching_row_in_order_and_only_its_tenants) {
  projection_node node(backend::embedded);
  sse_reader acme(node.url(), "acme", "/v1/query/accounts/watch?filter=balance%20%3E%2010");
  sse_reader all(node.url(), "acme", "/v1/query/accounts/watch");
  // The streams subscribe when their request is handled: wait for both.
  for (int i = 0; i < 200; ++i) {
    auto m = node.client().Get("/metrics");
    if (m && m->body.find("esflow_projection_watchers 2") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Expected, per key: the versions whose change touches a row with balance > 10 (before or after).
  std::map<std::string, std::vector<int>> expected;
  std::map<std::string, std::int64_t> balance;
  int total = 0;
  for (int round = 0; round < 6; ++round) {
    for (const std::string id : {"a", "b", "c"}) {
      const int version = round + 1;
      const std::int64_t before = balance.count(id) ? balance[id] : -1;
      std::int64_t after;
      if (round == 0) {
        after = id == "a" ? 20 : 0;
        node.accepted("acme", id, open_account(after));
      } else if (round == 4 && id == "a") {
        after = before - 15;
        node.accepted("acme", id, withdraw(15));
      } else {
        after = before + 4;
        node.accepted("acme", id, deposit(4));
      }
      balance[id] = after;
      if (after > 10 || before > 10) expected[id].push_back(version);
      ++total;
    }
    node.accepted("globex", "a",
                  round == 0 ? open_account(100) : deposit(1));  // another tenant: never streamed
  }
  std::size_t want = 0;
  for (const auto& [id, v] : expected) want += v.size();
  auto got = acme.wait_for(want);
  std::map<std::string, std::vector<int>> seen;
  for (const auto& e : got) {
    EXPECT_EQ(e["view"], "accounts");
    seen[e["key"].get<std::string>()].push_back(e["version"].get<int>());
  }
  EXPECT_EQ(seen, expected);
  // Without a filter: every change of the tenant, in order per key.
  auto every = all.wait_for(static_cast<std::size_t>(total));
  ASSERT_EQ(every.size(), static_cast<std::size_t>(total));
  std::map<std::string, int> last;
  for (const auto& e : every) {
    const auto key = e["key"].get<std::string>();
    EXPECT_EQ(e["version"].get<int>(), last[key] + 1) << key;
    last[key] = e["version"].get<int>();
    EXPECT_GT(e["position"].get<std::uint64_t>(), 0U);
  }
}

TEST(projection_watch, bad_watch_requests_are_refused_with_their_code) {
  projection_node node(backend::embedded);
  auto r = node.client().Get("/v1/query/accounts/watch?filter=balance%20%3E", {{"x-tenant-id", "acme"}});
  http_test::expect_rejection(r, 400, "invalid_query", "bad filter");
  r = node.client().Get("/v1/query/nope/watch", {{"x-tenant-id", "acme"}});
  http_test::expect_rejection(r, 400, "invalid_query", "unknown view");
  r = node.client().Get("/v1/query/accounts/watch");
  http_test::expect_rejection(r, 400, "invalid_tenant", "no tenant");
}

// A client that reads far slower than changes arrive: its buffer
// (watch_buffer: 4 in this file) fills, the stream is closed with a final
// slow_consumer event, and the projection keeps up meanwhile.
TEST(projection_watch, a_slow_client_is_dropped_with_a_final_event_and_never_slows_the_projection) {
  http_test::temp_dir dir;
  const std::string programs = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/";
  // Rows of 16 KB: a few hundred changes fill any socket buffer.
  dir.write("big.lua",
            "function project(row, event) return {pad = string.rep('x', 16000), v = event.version} end");
  const auto file = dir.write("projection.yaml", R"(pipeline: projection
settings:
  tenancy: multi
views:
  accounts: { from: [Account], apply: )" + programs + R"(account.lua, index: [balance] }
  big: { from: [Account], program: big.lua }
stages:
  tail:    { kind: projection.follow, poll: 5ms }
  decode:  { kind: projection.decode, key: message }
  tenant:  { kind: tenant.gate, key: message }
  project: { kind: projection.project, key: message }
  store:   { kind: projection.store, key: message }
  notify:  { kind: projection.notify, key: message, watch_buffer: 4, max_watches: 2 }
  ack:     { kind: ack }
flow:
  - tail -> decode -> tenant -> project -> store -> notify -> ack
  - "*.error -> ack"
)");
  projection_node node(backend::embedded, {}, {}, file);
  // A raw socket with a tiny receive window that reads 4 KB every 5 ms.
  const auto url = node.url();
  const int port = std::stoi(url.substr(url.rfind(':') + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int small = 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const std::string req = "GET /v1/query/big/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nx-tenant-id: acme\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  auto metric = [&](const std::string& line) {
    auto m = node.client().Get("/metrics");
    return m && m->body.find(line) != std::string::npos;
  };
  for (int i = 0; i < 200 && !metric("esflow_projection_watchers 1"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(metric("esflow_projection_watchers 1"));
  std::string text;
  std::thread slow_reader([&] {
    char buf[4096];
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 20000; ++i) {  // at most ~100 s
      const auto n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::uint64_t last = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 300; ++i) last = node.accepted("acme", "acc-" + std::to_string(i), open_account(i));
  // The projection reaches the last write at once: nothing waits for the stream.
  auto r = node.query("acme", "accounts",
                      {{"min_position", std::to_string(last)}, {"wait_ms", "5000"}, {"limit", "1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  bool dropped = false;
  for (int i = 0; i < 300 && !(dropped = metric("esflow_projection_watch_dropped_total 1")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(dropped) << "the slow stream was not closed";
  // The stream ends (the server closed it) with the slow_consumer event.
  slow_reader.join();
  ::close(fd);
  EXPECT_NE(text.find("event: row"), std::string::npos);
  const auto error_at = text.rfind("event: error");
  ASSERT_NE(error_at, std::string::npos) << text.size() << " bytes read";
  EXPECT_NE(text.find("slow_consumer", error_at), std::string::npos);
  EXPECT_EQ(text.find("event: row", error_at), std::string::npos) << "rows after the final event";
  // A third stream over max_watches (2) is refused with 503.
  sse_reader one(node.url(), "acme", "/v1/query/accounts/watch");
  sse_reader two(node.url(), "acme", "/v1/query/accounts/watch");
  for (int i = 0; i < 200 && !metric("esflow_projection_watchers 2"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto third = node.client().Get("/v1/query/accounts/watch", {{"x-tenant-id", "acme"}});
  http_test::expect_rejection(third, 503, "unavailable", "over max_watches");
}

TEST(projection_watch, every_row_change_is_published_on_nats_with_the_contract_headers) {
  projection_node node(backend::jetstream);
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, node.nats_url().c_str()), NATS_OK);
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, nc, "tenant.acme.view.accounts.>"), NATS_OK);
  natsConnection_Flush(nc);
  node.accepted("acme", "acc-1", open_account(5));
  node.accepted("acme", "acc-1", deposit(7));
  node.accepted("globex", "acc-1", open_account(1));  // another tenant's subject
  node.accepted("acme", "acc-1", withdraw(2));
  std::vector<json> got;
  for (int i = 0; i < 3; ++i) {
    natsMsg* m = nullptr;
    ASSERT_EQ(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK) << "message " << i;
    EXPECT_STREQ(natsMsg_GetSubject(m), "tenant.acme.view.accounts.acc-1");
    const char* v = nullptr;
    ASSERT_EQ(natsMsgHeader_Get(m, "tenant-id", &v), NATS_OK);
    EXPECT_STREQ(v, "acme");
    EXPECT_EQ(natsMsgHeader_Get(m, "x-correlation-id", &v), NATS_OK);
    EXPECT_EQ(natsMsgHeader_Get(m, "traceparent", &v), NATS_OK);
    got.push_back(
        json::parse(std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)))));
    natsMsg_Destroy(m);
  }
  EXPECT_EQ(got[0], json({{"view", "accounts"},
                          {"key", "acc-1"},
                          {"version", 1},
                          {"row", {{"balance", 5}, {"open", true}}},
                          {"position", got[0]["position"]}}));
  EXPECT_EQ(got[1]["version"], 2);
  EXPECT_EQ(got[1]["row"]["balance"], 12);
  EXPECT_EQ(got[2]["version"], 3);
  EXPECT_EQ(got[2]["row"]["balance"], 10);
  EXPECT_LT(got[0]["position"].get<std::uint64_t>(), got[2]["position"].get<std::uint64_t>());
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
}

}  // namespace
}  // namespace esflow::projection_test
