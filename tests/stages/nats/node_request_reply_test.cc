// The shipped aggregate-jetstream pipeline on a real nats-server: commands
// over NATS request/reply and over HTTP, both answered from one JetStream
// event log (docs/contract.md "NATS subjects", "Headers", "Behaviour clients rely on").
#include "stages/aggregate/aggregate_service.h"
#include "storage/jetstream/jetstream_event_log.h"
#include "tests/stages/nats/node_env.h"

#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>

namespace esflow::nats::testing {
namespace {

class node_request_reply : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(_server.start()) << "nats-server did not start";
    _served = serve({shipped_jetstream_pipeline(_dir)}, (_dir.path() / "data").string(), _server.url());
    ASSERT_TRUE(_served);
    _client = std::make_unique<client>(_server.url());
    ASSERT_TRUE(_client->raw());
  }
  void TearDown() override {
    _client.reset();
    _served.reset();
  }

  client::reply send(const std::string& subject, const std::string& body,
                     std::map<std::string, std::string> headers = {}) {
    return _client->request(subject, body, std::move(headers));
  }

  nats_server_fixture _server;
  temp_path _dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<client> _client;
};

void expect_rejected(const client::reply& r, const std::string& code, const std::string& what) {
  ASSERT_EQ(r.status, NATS_OK) << what << ": " << natsStatus_GetText(r.status);
  ASSERT_TRUE(r.body.is_object()) << what;
  EXPECT_EQ(r.body.value("status", ""), "rejected") << what << ": " << r.body.dump();
  EXPECT_EQ(r.body.value("code", ""), code) << what << ": " << r.body.dump();
  EXPECT_FALSE(r.body.value("message", "").empty()) << what;
  EXPECT_EQ(r.body.value("retryable", true), code == "unavailable" || code == "version_conflict") << what;
  EXPECT_TRUE(r.headers.count("x-correlation-id")) << what;
  EXPECT_TRUE(r.headers.count("traceparent")) << what;
  EXPECT_TRUE(r.headers.count("tenant-id")) << what;
}

TEST_F(node_request_reply, answers_open_deposit_withdraw_with_reply_headers) {
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto opened = send("tenant.acme.command.Account.acc-1", command_body("acc-1", open_account(100)),
                     {{"traceparent", traceparent}, {"x-correlation-id", "corr-42"}});
  ASSERT_EQ(opened.status, NATS_OK) << natsStatus_GetText(opened.status);
  EXPECT_EQ(opened.body.value("status", ""), "accepted") << opened.body.dump();
  EXPECT_EQ(opened.body.value("version", 0), 1);
  EXPECT_EQ(opened.body.value("aggregate_id", ""), "acc-1");
  ASSERT_EQ(opened.body["events"].size(), 1U);
  EXPECT_EQ(opened.body["events"][0]["event_type"], "account_opened");
  EXPECT_EQ(opened.body["events"][0]["tenant_id"], "acme");
  EXPECT_EQ(opened.body["events"][0]["correlation_id"], "corr-42");
  EXPECT_EQ(opened.body["events"][0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(opened.headers["tenant-id"], "acme");
  EXPECT_EQ(opened.headers["x-correlation-id"], "corr-42");
  EXPECT_EQ(opened.headers["traceparent"].substr(0, 35), traceparent.substr(0, 35));

  auto deposited = send("tenant.acme.command.Account.acc-1", command_body("acc-1", deposit(50)));
  EXPECT_EQ(deposited.body.value("version", 0), 2) << deposited.body.dump();
  auto withdrawn = send("tenant.acme.command.Account.acc-1", command_body("acc-1", withdraw(30), "w-1"));
  EXPECT_EQ(withdrawn.body.value("version", 0), 3) << withdrawn.body.dump();
  // A generated correlation id when none came: still on the reply.
  EXPECT_FALSE(withdrawn.headers["x-correlation-id"].empty());

  // The same command id again: the original answer, nothing appended.
  auto again = send("tenant.acme.command.Account.acc-1", command_body("acc-1", withdraw(30), "w-1"));
  EXPECT_EQ(again.body.value("duplicate", false), true) << again.body.dump();
  EXPECT_EQ(again.body.value("version", 0), 3);

  auto overdraw = send("tenant.acme.command.Account.acc-1", command_body("acc-1", withdraw(1000)));
  expect_rejected(overdraw, "insufficient_funds", "overdraw");

  // The subject's id wins; a body that differs is invalid_command.
  expect_rejected(send("tenant.acme.command.Account.acc-1", command_body("acc-2", deposit(1))),
                  "invalid_command", "body id differs from the subject's");

  // Three commits in the stream, one per accepted command.
  const auto commits = read_stream(_client->raw());
  ASSERT_EQ(commits.size(), 3U);
  for (std::size_t i = 0; i < commits.size(); ++i) EXPECT_EQ(commits[i].first_version, i + 1);
  // Each answer's position is its Commit message's stream sequence; the duplicate carries the original's.
  EXPECT_EQ(opened.body.value("position", std::uint64_t{0}), commits[0].seq);
  EXPECT_EQ(withdrawn.body.value("position", std::uint64_t{0}), commits[2].seq);
  EXPECT_EQ(again.body.value("position", std::uint64_t{0}), commits[2].seq);
}

// A restarted node has a cold cache: rehydrate guesses every miss is a new
// aggregate (no log read on a TBB worker). The guess must never leak into an
// answer: a rejection made on it is re-decided on a real read, and a decision
// with events is refused by the server (ExpectNoMessage) and retried.
TEST_F(node_request_reply, cold_cache_guesses_are_verified_against_the_log) {
  const std::string subject = "tenant.acme.command.Account.acc-7";
  ASSERT_EQ(send(subject, command_body("acc-7", open_account(100))).body.value("version", 0), 1);
  ASSERT_EQ(send(subject, command_body("acc-7", deposit(50))).body.value("version", 0), 2);
  const auto restart = [&] {
    _served.reset();
    _served = serve({shipped_jetstream_pipeline(_dir)}, (_dir.path() / "data").string(), _server.url());
    ASSERT_TRUE(_served);
  };

  restart();  // guessed new -> account_not_open on the guess -> re-decided on the log
  auto deposited = send(subject, command_body("acc-7", deposit(10)));
  EXPECT_EQ(deposited.body.value("status", ""), "accepted") << deposited.body.dump();
  EXPECT_EQ(deposited.body.value("version", 0), 3) << deposited.body.dump();

  restart();  // guessed new -> account_opened at v1 -> refused by the server -> retried
  expect_rejected(send(subject, command_body("acc-7", open_account(5))), "account_already_open",
                  "open on a cold cache");

  restart();  // the real balance (160), not the guess's, decides
  expect_rejected(send(subject, command_body("acc-7", withdraw(1000))), "insufficient_funds",
                  "overdraw on a cold cache");
  auto withdrawn = send(subject, command_body("acc-7", withdraw(160)));
  EXPECT_EQ(withdrawn.body.value("version", 0), 4) << withdrawn.body.dump();

  const auto commits = read_stream(_client->raw());
  ASSERT_EQ(commits.size(), 4U);
  for (std::size_t i = 0; i < commits.size(); ++i) EXPECT_EQ(commits[i].first_version, i + 1);
}

// A restarted node reads an aggregate from its snapshot's stream sequence
// on: the first command costs the commits after the snapshot (50 here,
// streamed by one ordered consumer), not the history (250).
TEST_F(node_request_reply, a_cold_read_after_restart_costs_the_commits_after_the_snapshot) {
  const std::string subject = "tenant.acme.command.Account.acc-9";
  ASSERT_EQ(send(subject, command_body("acc-9", open_account(0))).body.value("version", 0), 1);
  for (int i = 2; i <= 250; ++i) {
    auto r = send(subject, command_body("acc-9", deposit(1)));
    ASSERT_EQ(r.body.value("version", 0), i) << r.body.dump();
  }
  _served.reset();
  _served = serve({shipped_jetstream_pipeline(_dir)}, (_dir.path() / "data").string(), _server.url());
  ASSERT_TRUE(_served);
  auto service = cli::served_services(*_served).find<aggregate::aggregate_service>(
      "aggregate:" + storage::normalise_data_dir((_dir.path() / "data").string()));
  ASSERT_TRUE(service);
  auto* log = dynamic_cast<storage::jetstream::jetstream_event_log*>(&service->log());
  ASSERT_NE(log, nullptr);
  const auto before = log->stats();
  auto r = send(subject, command_body("acc-9", withdraw(1)));
  ASSERT_EQ(r.body.value("status", ""), "accepted") << r.body.dump();
  EXPECT_EQ(r.body.value("version", 0), 251);
  const auto after = log->stats();
  // The 50 commits after the snapshot at 200 come from one ordered consumer
  // started at the snapshot's sequence; a direct get finds the last commit.
  EXPECT_EQ(after.tail_consumers - before.tail_consumers, 1U) << "the tail was not streamed";
  EXPECT_LE(after.direct_gets - before.direct_gets, 3U) << "the cold read walked the history";
}

TEST_F(node_request_reply, invalid_tenant_token_gets_an_invalid_tenant_reply) {
  const auto body = command_body("acc-9", open_account(1));
  auto bad = send("tenant.bad!tenant.command.Account.acc-9", body);
  expect_rejected(bad, "invalid_tenant", "tenant token with '!'");
  EXPECT_EQ(bad.headers["tenant-id"], "_");  // an invalid tenant is never echoed
  // `_` is the empty tenant: invalid in multi-tenant mode.
  expect_rejected(send("tenant._.command.Account.acc-9", body), "invalid_tenant", "empty tenant");
  auto long_token = std::string(65, 'a');
  expect_rejected(send("tenant." + long_token + ".command.Account.acc-9", body), "invalid_tenant",
                  "too long");
}

// An id token of the subject is checked like the body's aggregate_id: a body
// without one must not smuggle a malformed id into the log.
TEST_F(node_request_reply, invalid_id_token_of_the_subject_is_invalid_command) {
  const std::string body =
      R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":1}})";
  auto bad = send("tenant.acme.command.Account.bad~id", body);
  expect_rejected(bad, "invalid_command", "id token with '~'");
  EXPECT_NE(bad.body.value("message", "").find("the subject's aggregate id"), std::string::npos)
      << bad.body.dump();
  auto too_long = send("tenant.acme.command.Account." + std::string(129, 'x'), body);
  expect_rejected(too_long, "invalid_command", "id token of 129 characters");
  EXPECT_TRUE(read_stream(_client->raw()).empty()) << "nothing may be committed";
  auto good = send("tenant.acme.command.Account.good-id", body);
  EXPECT_EQ(good.body.value("aggregate_id", ""), "good-id") << good.body.dump();
}

TEST_F(node_request_reply, body_tenant_other_than_the_subjects_is_denied) {
  json body = json::parse(command_body("acc-5", open_account(1)));
  body["tenant_id"] = "globex";
  auto r = send("tenant.acme.command.Account.acc-5", body.dump());
  expect_rejected(r, "tenant_access_denied", "body tenant differs");
  EXPECT_EQ(r.headers["tenant-id"], "acme");
  EXPECT_TRUE(read_stream(_client->raw()).empty());
}

TEST_F(node_request_reply, http_and_nats_share_one_log_and_ready_reports_nats) {
  ASSERT_EQ(send("tenant.acme.command.Account.both", command_body("both", open_account(10)))
                .body.value("version", 0),
            1);
  httplib::Client http(cli::served_url(*_served));
  http.set_read_timeout(10, 0);
  auto r = http.Post("/v1/commands", {{"x-tenant-id", "acme"}}, command_body("both", deposit(5)),
                     "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body).value("version", 0), 2);
  auto state = http.Get("/v1/aggregates/Account/both", {{"x-tenant-id", "acme"}});
  ASSERT_TRUE(state);
  EXPECT_EQ(json::parse(state->body)["state"]["balance"], 15) << state->body;
  // And NATS sees the HTTP commit.
  EXPECT_EQ(
      send("tenant.acme.command.Account.both", command_body("both", deposit(1))).body.value("version", 0), 3);

  auto ready = http.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto info = http.Get("/info");
  ASSERT_TRUE(info);
  auto j = json::parse(info->body);
  EXPECT_EQ(j["nats"]["state"], "connected") << info->body;
  ASSERT_TRUE(j["streams"].is_array()) << info->body;
  EXPECT_EQ(j["streams"][0]["name"], "AGGREGATE_EVENTS");
  EXPECT_TRUE(j["durability"].contains("description")) << info->body;
  EXPECT_EQ(j["storage"]["event_log"], "jetstream");

  // The backend's own figures, collected at scrape time.
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const char* line : {"esflow_jetstream_commits_total 3", "esflow_jetstream_appends_total 3",
                           "esflow_jetstream_conflicts_total 0", "esflow_jetstream_in_flight 0",
                           "esflow_jetstream_breaker_open 0", "esflow_jetstream_ack_latency_seconds_count 3"})
    EXPECT_NE(metrics->body.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n"
                                                                                      << metrics->body;

  // An outage is /ready's business, never /health's.
  _server.stop();
  ASSERT_TRUE(eventually(
      [&] {
        auto rr = http.Get("/ready");
        return rr && rr->status == 503;
      },
      5s));
  auto health = http.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
}

TEST(node_jetstream_start, incompatible_stream_stops_the_node_naming_the_field) {
  nats_server_fixture server;
  ASSERT_TRUE(server.start());
  {
    client c(server.url());
    jsCtx* js = nullptr;
    ASSERT_EQ(natsConnection_JetStream(&js, c.raw(), nullptr), NATS_OK);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "AGGREGATE_EVENTS";
    const char* subjects[] = {"tenant.*.aggregate.>"};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;  // the contract says file
    jsStreamInfo* si = nullptr;
    ASSERT_EQ(js_AddStream(&si, js, &cfg, nullptr, nullptr), NATS_OK);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
  }
  temp_path dir;
  ::setenv("ESFLOW_DATA_DIR", (dir.path() / "data").c_str(), 1);
  ::setenv("ESFLOW_NATS_URL", server.url().c_str(), 1);
  auto served = cli::serve_nodes({shipped_jetstream_pipeline(dir)});
  ASSERT_FALSE(served.ok());
  EXPECT_NE(served.err().message.find("storage"), std::string::npos) << served.err().to_string();
  EXPECT_NE(served.err().message.find("AGGREGATE_EVENTS"), std::string::npos) << served.err().to_string();
}

// `--nats` means for `esflow run` what it means for `esflow dev`: the shipped
// embedded-log pipeline, run as a real child process, commits to JetStream.
TEST(node_jetstream_start, esflow_run_with_nats_commits_to_the_stream) {
  nats_server_fixture server;
  ASSERT_TRUE(server.start());
  temp_path dir;
  const int port = nats_server_fixture::free_port();
  ASSERT_GT(port, 0);
  const std::string binary = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  const std::string pipeline = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml";
  const std::string data = (dir.path() / "data").string();
  const std::string http = "127.0.0.1:" + std::to_string(port);
  const std::string log = (dir.path() / "esflow.log").string();
  const pid_t pid = fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    if (std::freopen(log.c_str(), "w", stderr) == nullptr) _exit(126);
    ::execl(binary.c_str(), binary.c_str(), "run", pipeline.c_str(), "--nats", server.url().c_str(),
            "--data-dir", data.c_str(), "--http", http.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  httplib::Client c("http://" + http);
  c.set_read_timeout(10, 0);
  const bool ready = eventually(
      [&] {
        auto r = c.Get("/ready");
        return r && r->status == 200;
      },
      15s);
  std::string body;
  if (ready) {
    auto r = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, command_body("run-1", open_account(7)),
                    "application/json");
    if (r) body = r->body;
    auto info = c.Get("/info");
    if (info) {
      EXPECT_EQ(json::parse(info->body)["storage"]["event_log"], "jetstream") << info->body;
    }
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  bool exited = eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 15s);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(ready) << "esflow run did not become ready:\n" << read_text(log);
  EXPECT_EQ(json::parse(body, nullptr, false).value("version", 0), 1) << body;
  EXPECT_TRUE(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(log);
  client reader(server.url());
  const auto commits = read_stream(reader.raw());
  ASSERT_EQ(commits.size(), 1U) << "the command went to the embedded log, not to JetStream";
  EXPECT_EQ(commits[0].aggregate_id, "run-1");
}

}  // namespace
}  // namespace esflow::nats::testing
