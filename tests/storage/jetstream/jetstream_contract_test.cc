// The whole event log contract (tests/storage/event_log_contract.h) against
// the JetStream backend on a real nats-server, built the way nodes build it:
// through the event-log factory ("jetstream" backend: NATS link, stream
// setup, durability check, the log on a node store).
#include "storage/event_log_factory.h"
#include "storage/jetstream/jetstream_backend.h"
#include "tests/storage/event_log_contract.h"
#include "tests/storage/jetstream/jetstream_env.h"

namespace esflow::storage::testing {
namespace {

class jetstream_factory {
 public:
  jetstream_factory() {
    {
      auto c = nats::nats_connection::connect(nats::testing::test_connection_options(url()));
      if (!c.ok()) ADD_FAILURE() << c.err().to_string();
      if (c.ok()) nats::testing::delete_stream(*c.value(), "AGGREGATE_EVENTS");
    }
    esflow::ignore(_factory.add(jetstream::jetstream_backend()));
    open();
  }
  ~jetstream_factory() { close(); }

  event_log& log() { return *_log; }
  void reopen() {
    close();
    open();
  }

 private:
  static std::string url() { return nats::testing::shared_server().url(); }

  void open() {
    _services = std::make_unique<esflow::service_registry>();
    auto in = nats::testing::jetstream_factory_inputs(url(), _dir.str(), *_services);
    ASSERT_TRUE(in.env.store);
    auto log = _factory.make(in.settings, in.env);
    ASSERT_TRUE(log.ok()) << log.err().to_string();
    _log = log.value();
  }
  void close() {
    _log.reset();  // closes the log, then lets go of the store and the link
    _services.reset();
  }

  temp_dir _dir;
  event_log_factory _factory;
  std::unique_ptr<esflow::service_registry> _services;
  std::shared_ptr<event_log> _log;
};

using jetstream_factories = ::testing::Types<jetstream_factory>;
INSTANTIATE_TYPED_TEST_SUITE_P(jetstream, event_log_contract, jetstream_factories);

}  // namespace
}  // namespace esflow::storage::testing
