#pragma once
// esflow_jetstream_* families of one JetStream log, built from its stats and
// the connection's link status at scrape time (the hot path never touches
// prometheus-cpp).
#include "storage/jetstream/jetstream_event_log.h"
#include "transport/nats/nats_connection.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <vector>

namespace esflow::storage::jetstream {

class jetstream_metrics final : public prometheus::Collectable {
 public:
  jetstream_metrics(std::weak_ptr<event_log> log, std::weak_ptr<nats::nats_connection> conn)
      : _log(std::move(log)), _conn(std::move(conn)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::weak_ptr<event_log> _log;
  std::weak_ptr<nats::nats_connection> _conn;
};

}  // namespace esflow::storage::jetstream
