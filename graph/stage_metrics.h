#pragma once
// Exposes every stage's figures as esflow_stage_*{pipeline,stage,kind}. The
// families are built from the engine's atomics at scrape time, so the hot
// path never touches prometheus-cpp.
#include "graph/node.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <mutex>
#include <vector>

namespace esflow::graph {

class stage_metrics final : public prometheus::Collectable {
 public:
  void add(const std::shared_ptr<node>& n);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex _mu;
  std::vector<std::weak_ptr<node>> _nodes;
};

}  // namespace esflow::graph
