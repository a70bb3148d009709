#include "stages/ingest/aggregate_reads.h"

namespace esflow::stages {

std::string aggregate_reads_key(const std::string& data_dir) { return "aggregate:" + data_dir; }

std::shared_ptr<aggregate_reads> find_aggregate_reads(esflow::service_registry& services,
                                                      const std::string& data_dir) {
  if (auto injected = services.find<aggregate_reads>()) return injected;
  return services.find<aggregate_reads>(aggregate_reads_key(data_dir));
}

}  // namespace esflow::stages
