// The built binary `esflow run pipelines/gateway.yaml` as a child process in
// front of a real aggregate node (pipelines/aggregate-jetstream.yaml, served
// in-process) on a real nats-server: commands through the edge end in the
// event log, the node's answers come back as they are (docs/gateway.md).
#include "stages/gateway/api_keys.h"
#include "tests/stages/nats/node_env.h"
#include "tests/support/esflow_child.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace esflow::gateway {
namespace {

using nats::testing::json;
using namespace std::chrono_literals;

// `esflow run pipelines/gateway.yaml` with its output in `log`.
class gateway_process {
 public:
  gateway_process(const std::string& nats_url, const std::string& keys, const std::string& log) {
    port = esflow::testing::free_loopback_port();
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    std::vector<std::string> args = {bin,
                                     "run",
                                     std::string(ESFLOW_SOURCE_DIR) + "/pipelines/gateway.yaml",
                                     "--nats",
                                     nats_url,
                                     "--http",
                                     "127.0.0.1:" + std::to_string(port)};
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e)
      if (std::string_view(*e).rfind("ESFLOW_", 0) != 0) env.emplace_back(*e);
    env.push_back("ESFLOW_KEYS_FILE=" + keys);
    // Built before the fork: the child of a threaded process must not allocate.
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    _pid = ::fork();
    if (_pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execve(bin.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
  }
  ~gateway_process() {
    if (_pid > 0 && ::kill(_pid, SIGKILL) == 0) ::waitpid(_pid, nullptr, 0);
  }
  gateway_process(const gateway_process&) = delete;
  gateway_process& operator=(const gateway_process&) = delete;

  bool ready(std::chrono::milliseconds within) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(0, 200000);
    return nats::testing::eventually(
        [&] {
          auto r = c.Get("/ready");
          return r && r->status == 200;
        },
        within);
  }
  // SIGTERM, then the exit code within the time (-1: still running, killed).
  int terminate(std::chrono::milliseconds within) {
    if (_pid <= 0) return -1;
    ::kill(_pid, SIGTERM);
    int status = 0;
    const bool ended =
        nats::testing::eventually([&] { return ::waitpid(_pid, &status, WNOHANG) == _pid; }, within);
    if (!ended) return -1;
    _pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  int port = 0;

 private:
  pid_t _pid = -1;
};

TEST(gateway_e2e, commands_through_the_gateway_binary_reach_the_aggregate_node_and_its_log) {
  nats::testing::nats_server_fixture server;
  ASSERT_TRUE(server.start());
  nats::testing::temp_path dir;
  auto node = nats::testing::serve({nats::testing::shipped_jetstream_pipeline(dir)},
                                   (dir.path() / "data").string(), server.url());
  ASSERT_TRUE(node);
  const auto keys = (dir.path() / "keys.jsonl").string();
  auto key = append_api_key(keys, {"acme"}, {"commands", "queries"}, "e2e");
  ASSERT_TRUE(key.ok()) << key.err().to_string();
  const auto log = (dir.path() / "gateway.log").string();
  gateway_process gw(server.url(), keys, log);
  ASSERT_TRUE(gw.ready(15s)) << nats::testing::read_text(log);

  httplib::Client cli("127.0.0.1", gw.port);
  cli.set_read_timeout(10s);
  const httplib::Headers h{{"Authorization", "Bearer " + key.value()}, {"x-tenant-id", "acme"}};
  const std::string open =
      R"({"aggregate_type":"Account","aggregate_id":"acc-1","command_id":"open-1","payload":{"type":"open_account","initial_balance":100}})";
  auto r = cli.Post("/v1/commands", h, open, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j.value("status", ""), "accepted");
  EXPECT_EQ(j.value("version", 0), 1);
  EXPECT_EQ(j["events"][0].value("tenant_id", ""), "acme");

  r = cli.Post("/v1/commands", h, open, "application/json");  // the same command id: the original answer
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body).value("duplicate", false), true) << r->body;

  r = cli.Post(
      "/v1/commands", h,
      R"({"aggregate_type":"Account","aggregate_id":"acc-1","payload":{"type":"withdraw","amount":500}})",
      "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_EQ(json::parse(r->body).value("code", ""), "insufficient_funds");

  r = cli.Post("/v1/commands", {{"x-tenant-id", "acme"}}, open, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;

  // One commit in the stream: the duplicate and the rejections stored nothing.
  nats::testing::client reader(server.url());
  const auto commits = nats::testing::read_stream(reader.raw());
  ASSERT_EQ(commits.size(), 1U);
  EXPECT_EQ(commits[0].tenant, "acme");
  EXPECT_EQ(commits[0].command_id, "open-1");

  EXPECT_EQ(gw.terminate(10s), 0) << nats::testing::read_text(log);
}

}  // namespace
}  // namespace esflow::gateway
