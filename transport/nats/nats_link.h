#pragma once
// nats_link: the node's NATS link, one per URL per process (service_registry
// key "nats:<url>"), shared by the JetStream event log, nats.request and
// jetstream.consumer.
//
// Control plane: created by the first stage that needs it; connects (a
// factory error naming the URL when no server answers: the node does not
// start), registers with the node host when one runs:
//   /ready  "nats"       not ready while disconnected or the breaker is open
//   /info   "nats"       link state, server, disconnects/reconnects
//           "consumers"  one entry per jetstream.consumer (add_consumer)
// Never /health: an outage does not get a node restarted that recovers by itself.
//
// NOTE: thread-safe; the connection lives until the last stage, reply handle
//       and event log that uses it is gone (shared_ptr).
#include "common/result.h"
#include "transport/nats/nats_connection.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace esflow {
class service_registry;
}

namespace esflow::nats {

class nats_link {
 public:
  // The link for `url` (created and connected on first use).
  static result<std::shared_ptr<nats_link>> for_url(esflow::service_registry& services,
                                                    const std::string& url);

  nats_connection& connection() const { return *_conn; }
  const std::shared_ptr<nats_connection>& shared_connection() const { return _conn; }

  // A consumer's /info entry (name -> provider), shown under "consumers".
  void add_consumer(std::string name, std::function<nlohmann::json()> provider);
  nlohmann::json consumers() const;
  nlohmann::json status_json() const;

 private:
  std::shared_ptr<nats_connection> _conn;
  mutable std::mutex _mu;
  std::vector<std::pair<std::string, std::function<nlohmann::json()>>> _consumers;
};

// Connection settings of a node (reconnect forever with backoff, breaker,
// SendAsap); `url` may list several servers separated by commas.
connection_options node_connection_options(const std::string& url);

}  // namespace esflow::nats
