// The workflow stream contract (tests/storage/workflow_stream_contract.h)
// against the JetStream backend on a real nats-server (127.0.0.1), built the
// way nodes build it: through the event-log factory's "jetstream" backend
// (the process's NATS link of the URL, the stream created on open).
#include "storage/event_log_factory.h"
#include "storage/jetstream/jetstream_backend.h"
#include "storage/jetstream/jetstream_workflow_stream.h"
#include "tests/storage/jetstream/jetstream_env.h"
#include "tests/storage/workflow_stream_contract.h"

namespace esflow::storage::testing {
namespace {

std::string url() { return nats::testing::shared_server().url(); }

class jetstream_streams {
 public:
  jetstream_streams() {
    {
      auto c = nats::nats_connection::connect(nats::testing::test_connection_options(url()));
      if (!c.ok()) ADD_FAILURE() << c.err().to_string();
      if (c.ok()) {
        nats::testing::delete_stream(*c.value(), "WORKFLOW_COMMANDS");
        nats::testing::delete_stream(*c.value(), "WORKFLOW_EVENTS");
      }
    }
    esflow::ignore(_factory.add(jetstream::jetstream_backend()));
    open();
  }
  ~jetstream_streams() { close(); }

  workflow_stream& stream(std::string_view name) {
    return name == workflow_commands_stream ? *_commands : *_events;
  }
  void reopen() {
    close();
    open();
  }

 private:
  void open() {
    _services = std::make_unique<esflow::service_registry>();
    auto in = nats::testing::jetstream_factory_inputs(url(), _dir.str(), *_services);
    ASSERT_TRUE(in.env.store);
    auto c = _factory.make_stream(in.settings, in.env, std::string(workflow_commands_stream));
    ASSERT_TRUE(c.ok()) << c.err().to_string();
    _commands = c.value();
    auto e = _factory.make_stream(in.settings, in.env, std::string(workflow_events_stream));
    ASSERT_TRUE(e.ok()) << e.err().to_string();
    _events = e.value();
  }
  void close() {
    _commands.reset();  // closes the stream, then lets go of the link
    _events.reset();
    _services.reset();
  }

  temp_dir _dir;
  event_log_factory _factory;
  std::unique_ptr<esflow::service_registry> _services;
  std::shared_ptr<workflow_stream> _commands, _events;
};

using jetstream_factories = ::testing::Types<jetstream_streams>;
INSTANTIATE_TYPED_TEST_SUITE_P(jetstream, workflow_stream_contract, jetstream_factories);

TEST(jetstream_workflow_stream, unknown_stream_name_is_invalid_config) {
  auto c = nats::nats_connection::connect(nats::testing::test_connection_options(url()));
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  auto s = jetstream::jetstream_workflow_stream::open(*c.value(), "AGGREGATE_EVENTS");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::invalid_config);
}

TEST(jetstream_workflow_stream, a_stream_without_a_required_subject_is_invalid_config) {
  auto c = nats::nats_connection::connect(nats::testing::test_connection_options(url()));
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  nats::testing::delete_stream(*c.value(), "WORKFLOW_EVENTS");
  {
    // WORKFLOW_EVENTS as it was made before command results (two subjects).
    jsOptions jo;
    jsOptions_Init(&jo);
    auto js = c.value()->jetstream(jo);
    ASSERT_TRUE(js.ok());
    auto spec = nats::workflow_events_spec();
    spec.subjects.pop_back();
    ASSERT_TRUE(nats::ensure_stream(*js, spec).ok());
    jsCtx_Destroy(*js);
  }
  auto s = jetstream::jetstream_workflow_stream::open(*c.value(), "WORKFLOW_EVENTS");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::invalid_config) << s.err().to_string();
  nats::testing::delete_stream(*c.value(), "WORKFLOW_EVENTS");
}

}  // namespace
}  // namespace esflow::storage::testing
