// The event log contract, run against the embedded backend in both durability
// modes: opened directly, and built through the event-log factory on a node
// store (the way nodes get it).
#include "storage/embedded_event_log.h"
#include "storage/event_log_factory.h"
#include "tests/storage/embedded_fixture.h"
#include "tests/storage/event_log_contract.h"

namespace esflow::storage::testing {
namespace {

template <durability mode>
struct embedded_factory {
  embedded_env env{mode};
  event_log& log() { return env.log(); }
  void reopen() { env.reopen(); }
};

template <durability mode>
class embedded_via_factory {
 public:
  embedded_via_factory() {
    esflow::ignore(_factory.add(embedded_backend()));
    open();
  }
  event_log& log() { return *_log; }
  void reopen() {
    _log.reset();  // closes the log, then the store
    open();
  }

 private:
  void open() {
    auto store = node_store::open({.data_dir = _dir.str(), .mode = mode});
    ASSERT_TRUE(store.ok()) << store.err().to_string();
    event_log_env env;
    env.store = store.value();
    auto log = _factory.make({}, env);
    ASSERT_TRUE(log.ok()) << log.err().to_string();
    _log = log.value();
  }

  temp_dir _dir;
  event_log_factory _factory;
  std::shared_ptr<event_log> _log;
};

using embedded_factories =
    ::testing::Types<embedded_factory<durability::fsync>, embedded_factory<durability::relaxed>,
                     embedded_via_factory<durability::fsync>, embedded_via_factory<durability::relaxed>>;
INSTANTIATE_TYPED_TEST_SUITE_P(embedded, event_log_contract, embedded_factories);

}  // namespace
}  // namespace esflow::storage::testing
