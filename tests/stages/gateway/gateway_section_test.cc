// The gateway's `gateway:` section as `esflow validate` sees it: every
// problem with file:line (stages/gateway/gateway_config.h).
#include "cli/app.h"
#include "graph/pipeline_loader.h"
#include "stages/gateway/gateway_config.h"

#include <gtest/gtest.h>

namespace esflow::gateway {
namespace {

std::string pipeline_with(const std::string& section) {
  return "pipeline: gw\n"
         "settings: { nats_url: \"nats://127.0.0.1:1\" }\n" +
         section +
         "stages:\n"
         "  http:   { kind: gateway.http }\n"
         "  auth:   { kind: gateway.auth }\n"
         "  route:  { kind: gateway.route }\n"
         "  call:   { kind: gateway.call }\n"
         "  answer: { kind: gateway.answer }\n"
         "flow:\n"
         "  - http -> auth -> route -> call -> answer\n"
         "  - \"*.error -> answer\"\n";
}

TEST(gateway_section, the_shipped_pipeline_validates) {
  auto spec = graph::load_pipeline_file(std::string(ESFLOW_SOURCE_DIR) + "/pipelines/gateway.yaml",
                                        cli::builtin_registry());
  ASSERT_TRUE(spec.ok()) << spec.err().to_string();
  ASSERT_EQ(spec->node_kinds.size(), 1U);
}

TEST(gateway_section, names_every_bad_key_with_its_line) {
  const auto text = pipeline_with(
      "gateway:\n"
      "  query_upstream: nowhere\n"
      "  default_timeout_ms: 40000\n"
      "  bogus: 1\n"
      "  runner_grpc: 127.0.0.1:0\n");
  auto spec = graph::load_pipeline_text(text, "gw.yaml", ".", cli::builtin_registry());
  ASSERT_FALSE(spec.ok());
  const auto& m = spec.err().message;
  EXPECT_NE(m.find("gw.yaml:4: gateway.query_upstream must be host:port, not 'nowhere'"), std::string::npos)
      << m;
  EXPECT_NE(m.find("gw.yaml:5: gateway.default_timeout_ms must be an integer in [1, 30000]"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("gw.yaml:6: unknown key gateway.bogus"), std::string::npos) << m;
  EXPECT_NE(m.find("gw.yaml:7: gateway.runner_grpc must be host:port, not '127.0.0.1:0'"), std::string::npos)
      << m;
}

TEST(gateway_section, defaults_and_environment_substitution) {
  ::setenv("ESFLOW_TEST_GW_QUERY", "127.0.0.1:9090", 1);
  const auto node = YAML::Load(
      "query_upstream: ${ESFLOW_TEST_GW_QUERY}\nrunner_http: ${NOPE_NOT_SET:-}\n"
      "runner_grpc: ${NOPE_NOT_SET:-127.0.0.1:9091}\n");
  auto c = parse_gateway_section(node, "f.yaml", ".");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->query_upstream, "127.0.0.1:9090");
  EXPECT_EQ(c->runner_http, "");
  EXPECT_EQ(c->runner_grpc, "127.0.0.1:9091");
  EXPECT_EQ(c->default_timeout_ms, 5000);
  EXPECT_EQ(c->max_in_flight, 1024U);
  EXPECT_EQ(c->keys, "./keys.jsonl");
}

}  // namespace
}  // namespace esflow::gateway
