// stages::workflow_stream_for: one shared stream object per (directory,
// backend, stream), built through the process's event-log factory.
#include "stages/node_env.h"

#include "storage/event_log_factory.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

namespace esflow::stages {
namespace {

graph::pipeline_spec pipeline(const std::string& dir, const std::string& name = "p") {
  graph::pipeline_spec p;
  p.name = name;
  p.file = name + ".yaml";
  p.settings.set("data_dir", dir);
  p.settings.set("durability", std::string("relaxed"));
  p.settings.set("event_log", std::string("embedded"));
  p.settings.set("nats_url", std::string());
  p.settings.set("dedupe_ttl", std::int64_t{24 * 3600 * 1000});
  p.settings.set("stream_replicas", std::int64_t{1});
  return p;
}

class workflow_stream_for_test : public ::testing::Test {
 protected:
  workflow_stream_for_test() {
    auto f = std::make_shared<storage::event_log_factory>();
    esflow::ignore(f->add(storage::embedded_backend()));
    services.put<storage::event_log_factory>("", f);
  }
  storage::testing::temp_dir dir;
  esflow::service_registry services;
};

TEST_F(workflow_stream_for_test, one_object_per_directory_and_stream) {
  auto a = workflow_stream_for(pipeline(dir.str(), "a"), services, "WORKFLOW_EVENTS");
  ASSERT_TRUE(a.ok()) << a.err().to_string();
  auto b = workflow_stream_for(pipeline(dir.str(), "b"), services, "WORKFLOW_EVENTS");
  ASSERT_TRUE(b.ok()) << b.err().to_string();
  EXPECT_EQ(a.value().get(), b.value().get());
  auto c = workflow_stream_for(pipeline(dir.str(), "a"), services, "WORKFLOW_COMMANDS");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_NE(a.value().get(), c.value().get());
  EXPECT_EQ(c.value()->name(), "WORKFLOW_COMMANDS");

  storage::publish_request r;
  r.subject = "tenant.acme.effect.http";
  r.msg_id = "acme:c1";
  auto ack = storage::publish_and_wait(*c.value(), r);
  ASSERT_TRUE(ack.ok()) << ack.err().to_string();
  auto last = c.value()->last_position();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last.value(), ack->position);
}

TEST_F(workflow_stream_for_test, unknown_stream_is_invalid_config) {
  auto s = workflow_stream_for(pipeline(dir.str()), services, "AGGREGATE_EVENTS");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::invalid_config);
}

}  // namespace
}  // namespace esflow::stages
