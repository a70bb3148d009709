#include "stages/gateway/upstream_channels.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

namespace esflow::gateway {

upstream_channels::upstream_channels(options opts) : _opts(std::move(opts)) {
  _opts.max_channels = std::max<std::size_t>(_opts.max_channels, 1);
  if (!_opts.make)
    _opts.make = [](const std::string& target) {
      return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
    };
}

upstream_channels::~upstream_channels() = default;

std::size_t upstream_channels::expire_locked(clock::time_point t) {
  // The list is in order of use: the idle ones are all at its back.
  std::size_t dropped = 0;
  while (!_lru.empty() && t - _lru.back().last_used > _opts.idle_ttl) {
    _by_target.erase(_lru.back().target);
    _lru.pop_back();
    ++dropped;
  }
  _counters.expired += dropped;
  return dropped;
}

std::shared_ptr<grpc::Channel> upstream_channels::get(const std::string& target) {
  const auto t = now();
  std::lock_guard lock(_mutex);
  expire_locked(t);
  if (auto it = _by_target.find(target); it != _by_target.end()) {
    _lru.splice(_lru.begin(), _lru, it->second);
    it->second->last_used = t;
    ++_counters.hits;
    return it->second->channel;
  }
  // CreateChannel does not connect (that happens on the first call), so
  // making it under the lock costs no I/O.
  _lru.push_front(entry{target, _opts.make(target), t});
  _by_target.emplace(target, _lru.begin());
  ++_counters.created;
  while (_lru.size() > _opts.max_channels) {
    _by_target.erase(_lru.back().target);
    _lru.pop_back();
    ++_counters.evicted;
  }
  return _lru.front().channel;
}

std::size_t upstream_channels::sweep() {
  const auto t = now();
  std::lock_guard lock(_mutex);
  return expire_locked(t);
}

std::size_t upstream_channels::size() const {
  std::lock_guard lock(_mutex);
  return _lru.size();
}

upstream_channels::counters upstream_channels::stats() const {
  std::lock_guard lock(_mutex);
  return _counters;
}

}  // namespace esflow::gateway
