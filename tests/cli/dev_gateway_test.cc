// `esflow dev` with the gateway (docs/gateway.md "Dev mode"): the dev
// pipelines served in one process as the binary serves them, the gateway on
// a server of its own in front of the process's nodes (no NATS), with the
// key `esflow dev` makes (cli/dev.h). What a client gets through the gateway
// is what the nodes answer directly. And `esflow run` of the deployment's
// gateway.yaml still refuses to start without its key file.
#include "cli/app.h"
#include "cli/dev.h"
#include "tests/cli/load_run.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <cstdlib>
#include <fstream>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace esflow::cli {
namespace {

using nlohmann::json;

const std::string k_pipelines = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
// cli/main.cc's k_dev_pipelines.
const std::vector<std::string> k_dev = {"aggregate.yaml",   "follower.yaml",      "projection.yaml",
                                        "runner-saga.yaml", "runner-effect.yaml", "gateway-dev.yaml"};

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    socklen_t len = sizeof(a);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) port = ntohs(a.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

class dev_gateway : public ::testing::Test {
 protected:
  void SetUp() override {
    data = dir.str() + "/data";
    auto made = ensure_dev_key(data);
    ASSERT_TRUE(made.ok()) << made.err().message;
    key_info = made.value();
    key = read_file(key_info.key_file);
    while (!key.empty() && key.back() == '\n') key.pop_back();
    gateway_port = free_port();
    ::setenv("ESFLOW_DEV_KEYS_FILE", key_info.keys_file.c_str(), 1);
    ::setenv("ESFLOW_GATEWAY_ADDR", ("127.0.0.1:" + std::to_string(gateway_port)).c_str(), 1);
    serve_options o;
    o.overrides.data_dir = data;
    o.overrides.http = "127.0.0.1:0";
    std::vector<std::string> files;
    for (const auto& f : k_dev) files.push_back(k_pipelines + f);
    auto s = serve_nodes(files, o);
    ::unsetenv("ESFLOW_DEV_KEYS_FILE");
    ::unsetenv("ESFLOW_GATEWAY_ADDR");
    ASSERT_TRUE(s.ok()) << s.err().message;
    served = s.value();
  }
  void TearDown() override {
    if (served) {
      EXPECT_TRUE(stop_served(*served).ok());
    }
  }

  httplib::Client node() const { return httplib::Client(served_url(*served)); }
  httplib::Client gateway() const { return httplib::Client("127.0.0.1", gateway_port); }
  httplib::Headers auth() const { return {{"Authorization", "Bearer " + key}, {"x-tenant-id", "acme"}}; }

  storage::testing::temp_dir dir;
  std::string data, key;
  dev_key key_info;
  int gateway_port = 0;
  std::shared_ptr<served_nodes> served;
};

std::string command(const std::string& id, const std::string& payload) {
  return R"({"aggregate_type":"Account","aggregate_id":")" + id + R"(","command_id":"c-)" + id +
         R"(","payload":)" + payload + "}";
}

TEST_F(dev_gateway, the_dev_key_is_made_once_and_only_its_owner_reads_it) {
  struct stat st {};
  ASSERT_EQ(::stat(key_info.key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_TRUE(key_info.created);
  EXPECT_EQ(key.rfind("esk_", 0), 0U) << key;
  EXPECT_EQ(read_file(key_info.keys_file).find(key), std::string::npos) << "the key file keeps digests only";
  auto again = ensure_dev_key(data);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(read_file(key_info.key_file), key + "\n");
}

TEST_F(dev_gateway, commands_reads_and_queries_through_the_gateway_answer_as_the_nodes_do) {
  auto n = node();
  auto g = gateway();
  // A command, directly and through the gateway: the same CommandResult shape.
  auto direct =
      n.Post("/v1/commands", {{"x-tenant-id", "acme"}},
             command("acc-direct", R"({"type":"open_account","initial_balance":5})"), "application/json");
  ASSERT_TRUE(direct);
  ASSERT_EQ(direct->status, 200) << direct->body;
  auto through =
      g.Post("/v1/commands", auth(), command("acc-gw", R"({"type":"open_account","initial_balance":100})"),
             "application/json");
  ASSERT_TRUE(through);
  ASSERT_EQ(through->status, 200) << through->body;
  const auto dj = json::parse(direct->body), gj = json::parse(through->body);
  EXPECT_EQ(keys_of(gj), keys_of(dj)) << direct->body << " vs " << through->body;
  EXPECT_EQ(gj["status"], "accepted");
  EXPECT_EQ(gj["aggregate_id"], "acc-gw");
  EXPECT_EQ(gj["version"], 1);
  EXPECT_EQ(through->get_header_value("tenant-id"), "acme");

  // The same command id again: the stored answer (idempotent), as the node gives it.
  auto repeat =
      g.Post("/v1/commands", auth(), command("acc-gw", R"({"type":"open_account","initial_balance":100})"),
             "application/json");
  ASSERT_TRUE(repeat);
  EXPECT_EQ(repeat->status, 200) << repeat->body;

  // A domain rejection: the node's code and status (422), relayed.
  auto over = g.Post("/v1/commands", auth(), command("acc-gw-w", R"({"type":"withdraw","amount":1})"),
                     "application/json");
  auto over_direct = n.Post("/v1/commands", {{"x-tenant-id", "acme"}},
                            command("acc-d-w", R"({"type":"withdraw","amount":1})"), "application/json");
  ASSERT_TRUE(over && over_direct);
  EXPECT_EQ(over->status, over_direct->status) << over->body << " vs " << over_direct->body;
  EXPECT_EQ(json::parse(over->body)["code"], json::parse(over_direct->body)["code"]);

  // The aggregate read: the node's body.
  auto read = g.Get("/v1/aggregates/Account/acc-gw", auth());
  auto read_direct = n.Get("/v1/aggregates/Account/acc-gw", {{"x-tenant-id", "acme"}});
  ASSERT_TRUE(read && read_direct);
  EXPECT_EQ(read->status, 200) << read->body;
  EXPECT_EQ(read->body, read_direct->body);
  EXPECT_EQ(json::parse(read->body)["version"], 1);
  auto events = g.Get("/v1/aggregates/Account/acc-gw/events?limit=10", auth());
  ASSERT_TRUE(events);
  EXPECT_EQ(events->status, 200) << events->body;
  EXPECT_EQ(json::parse(events->body)["events"].size(), 1U) << events->body;
  auto missing = g.Get("/v1/aggregates/Account/nobody", auth());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;

  // The accounts view, once the projection has both commits.
  const std::string q = "/v1/query/accounts?min_position=2&wait_ms=3000&filter=balance%20%3E%2050";
  auto rows = g.Get(q, auth());
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->status, 200) << rows->body;
  const auto rj = json::parse(rows->body);
  ASSERT_EQ(rj["rows"].size(), 1U) << rows->body;
  EXPECT_EQ(rj["rows"][0]["key"], "acc-gw") << rows->body;
  auto rows_direct = n.Get(q, {{"x-tenant-id", "acme"}});
  ASSERT_TRUE(rows_direct);
  EXPECT_EQ(json::parse(rows_direct->body)["rows"], rj["rows"]);
  auto unknown = g.Get("/v1/query/nosuchview", auth());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400) << unknown->body;
}

// `esflow load` through the gateway: its commands and its verification's
// event reads carry the dev key; without one, every command is denied and
// the reads fail, so the run does not verify.
TEST_F(dev_gateway, esflow_load_through_the_gateway_verifies_with_the_key) {
  graph::testing::temp_dir out;
  const auto url = "http://127.0.0.1:" + std::to_string(gateway_port);
  const auto r = load::testing::run_load(
      out, "--url " + url + " --key " + key + " --accounts 100 --commands 500 --clients 4 --format json");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.report["setup"]["accepted"], 100) << r.out;
  EXPECT_EQ(r.report["run"]["answered"], 500) << r.out;
  EXPECT_EQ(r.report["run"]["error"], 0) << r.out;
  EXPECT_EQ(r.report["verification"]["passed"], true) << r.out;
  EXPECT_EQ(r.report["verification"]["accounts_read"], 100) << r.out;

  const auto denied =
      load::testing::run_load(out, "--url " + url + " --accounts 10 --commands 10 --format json");
  EXPECT_EQ(denied.code, 1) << denied.out << denied.err;
  EXPECT_EQ(denied.report["setup"]["rejected_by_code"]["unauthenticated"], 10) << denied.out;
  const auto checks = load::testing::failed_checks(denied.report);
  EXPECT_NE(std::find(checks.begin(), checks.end(), "read_failed"), checks.end()) << denied.out;
}

TEST_F(dev_gateway, without_a_key_the_gateway_denies_and_reaches_no_node) {
  auto g = gateway();
  auto r = g.Post("/v1/commands", {{"x-tenant-id", "acme"}},
                  command("acc-nokey", R"({"type":"open_account","initial_balance":1})"), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401) << r->body;
  EXPECT_EQ(json::parse(r->body)["code"], "unauthenticated");
  auto wrong =
      g.Get("/v1/query/accounts", {{"Authorization", "Bearer esk_not-a-key"}, {"x-tenant-id", "acme"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto read = node().Get("/v1/aggregates/Account/acc-nokey", {{"x-tenant-id", "acme"}});
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 404) << "the command reached the aggregate: " << read->body;
}

// The gateway of gateway-dev.yaml alone: no aggregate, no projection in the
// process. Every route answers 503 unavailable (retryable) as the NATS path
// does when no node answers; a `listen` that is not host:port stops the node's build.
TEST(dev_gateway_alone, answers_unavailable_without_nodes_and_refuses_a_bad_listen_address) {
  storage::testing::temp_dir dir;
  const auto data = dir.str() + "/data";
  auto key = ensure_dev_key(data);
  ASSERT_TRUE(key.ok()) << key.err().message;
  auto secret = read_file(key->key_file);
  secret.pop_back();
  const auto serve = [&](const std::string& listen) {
    ::setenv("ESFLOW_DEV_KEYS_FILE", key->keys_file.c_str(), 1);
    ::setenv("ESFLOW_GATEWAY_ADDR", listen.c_str(), 1);
    serve_options o;
    o.overrides.data_dir = data;
    o.overrides.http = "127.0.0.1:0";
    auto s = serve_nodes({k_pipelines + "gateway-dev.yaml"}, o);
    ::unsetenv("ESFLOW_DEV_KEYS_FILE");
    ::unsetenv("ESFLOW_GATEWAY_ADDR");
    return s;
  };
  auto bad = serve("no-port");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.err().message.find("listen 'no-port' is not host:port"), std::string::npos)
      << bad.err().message;

  const int port = free_port();
  auto s = serve("127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(s.ok()) << s.err().message;
  httplib::Client g("127.0.0.1", port);
  const httplib::Headers h{{"Authorization", "Bearer " + secret}, {"x-tenant-id", "acme"}};
  auto c = g.Post("/v1/commands", h, command("acc-1", R"({"type":"open_account","initial_balance":1})"),
                  "application/json");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 503) << c->body;
  EXPECT_EQ(json::parse(c->body)["code"], "unavailable");
  EXPECT_FALSE(c->get_header_value("Retry-After").empty());
  auto q = g.Get("/v1/query/accounts", h);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->status, 503) << q->body;
  auto r = g.Get("/v1/aggregates/Account/acc-1", h);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_TRUE(stop_served(*s.value()).ok());
}

// `esflow run` of the deployment's gateway: no key file, no gateway (dev's key is dev's only).
TEST(dev_gateway_binary, run_of_gateway_yaml_without_its_key_file_stays_an_error) {
  storage::testing::temp_dir dir;
  const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
  const auto err = dir.str() + "/stderr.txt";
  const auto cmd = "cd " + dir.str() + " && ESFLOW_KEYS_FILE=" + dir.str() +
                   "/missing.jsonl ESFLOW_HTTP_ADDR=127.0.0.1:0 timeout 30 " + bin + " run " + k_pipelines +
                   "gateway.yaml >/dev/null 2>" + err + " </dev/null";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const auto text = read_file(err);
  EXPECT_NE(text.find("the gateway's API keys (gateway.keys, " + dir.str() + "/missing.jsonl)"),
            std::string::npos)
      << text;
  EXPECT_FALSE(std::filesystem::exists(dir.str() + "/missing.jsonl"));
}

}  // namespace
}  // namespace esflow::cli
