#pragma once
// What the answers of a workload source's commands were: the reply handle
// every message of a `source.workload` carries (its answering stage completes
// it), found by bench in the service registry under workload_tally_name().
// Thread-safe: answers complete on TBB workers.
#include "graph/message.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace esflow::stages {

inline std::string workload_tally_name(const std::string& pipeline, const std::string& stage) {
  return "source.workload:" + pipeline + "/" + stage;
}

class workload_tally final : public graph::reply_handle {
 public:
  struct counts {
    std::uint64_t sent = 0;
    std::uint64_t accepted = 0;    // answered without error (duplicates included)
    std::uint64_t duplicates = 0;  // accepted as a re-send of an earlier command
    std::map<std::string, std::uint64_t>
        rejected;  // by wire code (a program's own code for domain rejections)
    std::uint64_t rejected_total() const;
    std::uint64_t unanswered() const { return sent - accepted - rejected_total(); }
  };

  void sent() { _sent.fetch_add(1, std::memory_order_relaxed); }
  void complete(const graph::message& m) override;
  counts read() const;

 private:
  std::atomic<std::uint64_t> _sent{0}, _accepted{0}, _duplicates{0};
  mutable std::mutex _mu;
  std::map<std::string, std::uint64_t> _rejected;  // guarded by _mu
};

}  // namespace esflow::stages
