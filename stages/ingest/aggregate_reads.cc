#include "stages/ingest/aggregate_reads.h"

namespace esflow::stages {

std::shared_ptr<aggregate_reads> find_aggregate_reads(graph::service_registry& services) {
  return services.find<aggregate_reads>();
}

}  // namespace esflow::stages
