// The event log contract, run against the embedded backend in both durability modes.
#include "storage/embedded_event_log.h"
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

using embedded_factories =
    ::testing::Types<embedded_factory<durability::fsync>, embedded_factory<durability::relaxed>>;
INSTANTIATE_TYPED_TEST_SUITE_P(embedded, event_log_contract, embedded_factories);

}  // namespace
}  // namespace esflow::storage::testing
