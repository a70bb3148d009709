#pragma once
// The gateway's upstream gRPC channels (queries, runner admin), pooled and
// bounded (docs/contract.md "Gateway (the edge) and tenant placement":
// "Upstream connections are pooled and bounded"). One channel per target
// "host:port" — a grpc::Channel multiplexes every call to its target over its
// HTTP/2 connection, so one is enough — created lazily, the least recently
// used one dropped beyond max_channels, and one idle longer than idle_ttl
// dropped on the next get() or sweep().
//
// NOTE: thread-safe (one mutex around the map; get() does no I/O:
// grpc::CreateChannel connects lazily, on the first call). A channel dropped
// from the pool stays alive for the callers still holding it and closes when
// the last of them lets go. No thread of its own.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace grpc {
class Channel;
}

namespace esflow::gateway {

class upstream_channels {
 public:
  using clock = std::chrono::steady_clock;
  using channel_factory = std::function<std::shared_ptr<grpc::Channel>(const std::string& target)>;

  struct options {
    std::size_t max_channels = 64;  // at least 1
    std::chrono::milliseconds idle_ttl{std::chrono::minutes(5)};
    std::function<clock::time_point()> now{};  // tests inject a clock; steady_clock::now when empty
    // grpc::CreateChannel(target, grpc::InsecureChannelCredentials()) when empty.
    channel_factory make{};
  };

  upstream_channels() : upstream_channels(options{}) {}
  explicit upstream_channels(options opts);
  ~upstream_channels();
  upstream_channels(const upstream_channels&) = delete;
  upstream_channels& operator=(const upstream_channels&) = delete;

  // The channel of `target` ("host:port", e.g. a node registration's "grpc"),
  // created on first use; marks it most recently used. Drops the idle ones first.
  std::shared_ptr<grpc::Channel> get(const std::string& target);
  // Drops the channels idle longer than idle_ttl; returns how many.
  std::size_t sweep();

  std::size_t size() const;

  // For metrics (monotonic).
  struct counters {
    std::uint64_t created = 0;  // channels made
    std::uint64_t hits = 0;     // get() answered from the pool
    std::uint64_t evicted = 0;  // dropped for the max_channels bound (LRU)
    std::uint64_t expired = 0;  // dropped after idle_ttl
  };
  counters stats() const;

 private:
  struct entry {
    std::string target;
    std::shared_ptr<grpc::Channel> channel;
    clock::time_point last_used;
  };
  clock::time_point now() const { return _opts.now ? _opts.now() : clock::now(); }
  std::size_t expire_locked(clock::time_point t);  // under _mutex

  options _opts;
  mutable std::mutex _mutex;
  std::list<entry> _lru;  // most recently used first
  std::unordered_map<std::string, std::list<entry>::iterator> _by_target;
  counters _counters;
};

}  // namespace esflow::gateway
