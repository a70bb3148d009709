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
    auto store = node_store::open({.data_dir = _dir.str(), .mode = durability::relaxed});
    ASSERT_TRUE(store.ok()) << store.err().to_string();
    _services = std::make_unique<esflow::service_registry>();
    event_log_settings s;
    s.backend = "jetstream";
    s.nats_url = url();
    event_log_env env;
    env.store = store.value();
    env.services = _services.get();
    auto log = _factory.make(s, env);
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
