// The whole event log contract (tests/storage/event_log_contract.h) against
// the JetStream backend on a real nats-server.
#include "tests/nats/jetstream_env.h"
#include "tests/storage/event_log_contract.h"

namespace esflow::storage::testing {
namespace {

struct jetstream_factory {
  nats::testing::jetstream_env env{nats::testing::shared_server()};
  event_log& log() { return env.log(); }
  void reopen() { env.reopen(); }
};

using jetstream_factories = ::testing::Types<jetstream_factory>;
INSTANTIATE_TYPED_TEST_SUITE_P(jetstream, event_log_contract, jetstream_factories);

}  // namespace
}  // namespace esflow::storage::testing
