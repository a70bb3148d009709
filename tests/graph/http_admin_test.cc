// The admin endpoints of a running node over real HTTP on 127.0.0.1.
#include "graph/node.h"
#include "tests/graph/graph_test_util.h"
#include "transport/http_server.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace esflow::graph::testing {
namespace {

using namespace std::chrono_literals;

class http_admin_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spec = load_ok(dir, "p.yaml",
                        "pipeline: admin\n"
                        "stages:\n"
                        "  gen: {kind: source.generator, count: 1000000, rate: 2000}\n"
                        "  slow: {kind: delay, micros: 2000}\n"
                        "  out: {kind: sink.null}\n"
                        "flow:\n"
                        "  - gen -> slow -> out\n",
                        reg);
    auto built = node::build(std::move(spec), services);
    ASSERT_TRUE(built.ok()) << built.err().message;
    n = std::shared_ptr<node>(std::move(built).value());
    http = std::make_shared<transport::http_server>("127.0.0.1:0");
    host = std::make_unique<transport::node_host>(http);
    host->add_node(n);
    host->install_routes();
    auto started = http->start();
    ASSERT_TRUE(started.ok()) << started.err().to_string();
    ASSERT_GT(http->port(), 0);
    n->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", http->port());
    client->set_connection_timeout(2, 0);
    client->set_read_timeout(5, 0);
  }
  void TearDown() override {
    if (n) ignore(n->drain(2000ms));
    if (http) http->stop();
  }

  nlohmann::json get_json(const std::string& path, int want_status) {
    auto res = client->Get(path.c_str());
    EXPECT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    if (!res) return {};
    EXPECT_EQ(res->status, want_status) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << ": " << res->body;
    return j;
  }

  temp_dir dir;
  kind_registry reg = test_registry();
  service_registry services;
  std::shared_ptr<node> n;
  std::shared_ptr<transport::http_server> http;
  std::unique_ptr<transport::node_host> host;
  std::unique_ptr<httplib::Client> client;
};

TEST_F(http_admin_test, health_and_ready_answer_200_while_running) {
  auto health = get_json("/health", 200);
  EXPECT_EQ(health.value("status", ""), "ok");
  auto ready = get_json("/ready", 200);
  EXPECT_EQ(ready.value("status", ""), "ready");
}

TEST_F(http_admin_test, drain_request_answers_202_and_ready_turns_503) {
  auto res = client->Post("/admin/drain", "", "text/plain");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 202);
  EXPECT_EQ(nlohmann::json::parse(res->body).value("status", ""), "draining");
  EXPECT_TRUE(host->drain_requested());
  auto ready = get_json("/ready", 503);
  EXPECT_EQ(ready.value("status", ""), "not_ready");
  EXPECT_EQ(ready.value("detail", ""), "draining");
  get_json("/health", 200);  // draining is not unhealthy

  ASSERT_TRUE(n->drain(5000ms).ok());
  host.reset();  // a fresh host: readiness now follows the stopped pipeline
  host = std::make_unique<transport::node_host>(http);
  host->add_node(n);
  auto r = host->ready();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "pipeline 'admin' is stopped");
}

TEST_F(http_admin_test, metrics_are_prometheus_text_with_stage_families) {
  const auto deadline = deadline_in(5s);
  while (n->find_stage("out")->stats().read().in == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  auto res = client->Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(res->body.find("# TYPE esflow_stage_messages_in_total counter"), std::string::npos);
  EXPECT_NE(
      res->body.find("esflow_stage_messages_in_total{kind=\"delay\",pipeline=\"admin\",stage=\"slow\"} "),
      std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("esflow_pipeline_in_flight{pipeline=\"admin\"} "), std::string::npos);
}

TEST_F(http_admin_test, info_has_build_pipeline_streams_consumers_programs) {
  auto info = get_json("/info", 200);
  for (const char* key : {"build", "pipeline", "streams", "consumers", "programs"})
    EXPECT_TRUE(info.contains(key)) << key << " missing in " << info.dump();
  EXPECT_EQ(info.at("build").value("name", ""), "esflow");
  ASSERT_TRUE(info.at("pipeline").is_array());
  ASSERT_EQ(info.at("pipeline").size(), 1u);
  EXPECT_EQ(info.at("pipeline")[0].value("name", ""), "admin");
  EXPECT_EQ(info.at("pipeline")[0].value("state", ""), "running");
  EXPECT_EQ(info.at("pipeline")[0].value("stages", 0), 3);
}

TEST_F(http_admin_test, admin_graph_serves_json_and_dot) {
  auto g = get_json("/admin/graph", 200);
  EXPECT_EQ(g.value("pipeline", ""), "admin");
  EXPECT_EQ(g.value("state", ""), "running");
  ASSERT_TRUE(g.at("stages").is_array());
  ASSERT_EQ(g.at("stages").size(), 3u);
  for (const auto& s : g.at("stages"))
    for (const char* key : {"name", "kind", "concurrency", "params", "stats"})
      EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(g.at("stages")[1].value("kind", ""), "delay");
  ASSERT_EQ(g.at("edges").size(), 2u);
  EXPECT_EQ(g.at("edges")[0], (nlohmann::json{{"from", "gen"}, {"port", "out"}, {"to", "slow"}}));
  EXPECT_EQ(g.at("pipelines"), nlohmann::json::array({"admin"}));

  auto dot = client->Get("/admin/graph?format=dot");
  ASSERT_TRUE(dot) << httplib::to_string(dot.error());
  EXPECT_EQ(dot->status, 200);
  EXPECT_EQ(dot->get_header_value("Content-Type"), "text/vnd.graphviz");
  EXPECT_EQ(dot->body.rfind("digraph \"admin\" {", 0), 0u) << dot->body;
  EXPECT_NE(dot->body.find("\"gen\" -> \"slow\";"), std::string::npos) << dot->body;

  auto missing = get_json("/admin/graph?pipeline=nope", 404);
  EXPECT_EQ(missing.value("code", ""), "not_found");
}

TEST_F(http_admin_test, admin_graph_html_is_one_self_contained_page) {
  auto res = client->Get("/admin/graph.html");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->get_header_value("Content-Security-Policy").rfind("default-src 'none';", 0), 0u)
      << res->get_header_value("Content-Security-Policy");
  const auto& body = res->body;
  EXPECT_EQ(body.rfind("<!doctype html>", 0), 0u) << body.substr(0, 80);
  EXPECT_NE(body.find("<svg id=\"graph\""), std::string::npos);
  EXPECT_NE(body.find("</html>"), std::string::npos) << "the page is cut short";
  // Nothing from elsewhere: no URL with a scheme or a protocol-relative one,
  // no element that loads a file; the page's one request is "graph?...".
  std::string lower(body.size(), '\0');
  std::transform(body.begin(), body.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* outside : {"http://", "https://", "\"//", "'//", "src=", "<link", "@import"})
    EXPECT_EQ(lower.find(outside), std::string::npos) << "the page refers to '" << outside << "'";
  for (auto at = lower.find("url("); at != std::string::npos; at = lower.find("url(", at + 1))
    EXPECT_EQ(lower.substr(at, 5), "url(#") << "only references into the page itself";
  EXPECT_NE(body.find("fetch(url"), std::string::npos);

  auto not_a_page = client->Get("/admin/graphxhtml");  // the route's '.' is literal
  ASSERT_TRUE(not_a_page);
  EXPECT_EQ(not_a_page->status, 404);
}

}  // namespace
}  // namespace esflow::graph::testing
