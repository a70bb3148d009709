#pragma once
// Process-wide objects that several stages and node kinds share (the HTTP
// server, the node host, a data directory's node store and event log, a NATS
// link per URL), created once on first use, found by type and name.
//
// NOTE: get_or_create() is thread-safe and may nest; created objects live until the
// registry is destroyed, after every node that uses them.
#include "common/result.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <typeindex>

namespace esflow {

class service_registry {
 public:
  template <typename T>
  result<std::shared_ptr<T>> get_or_create(const std::string& name,
                                           const std::function<result<std::shared_ptr<T>>()>& make) {
    std::lock_guard lock(_mu);
    auto key = std::make_pair(std::type_index(typeid(T)), name);
    auto it = _objects.find(key);
    if (it != _objects.end()) return std::static_pointer_cast<T>(it->second);
    auto made = make();
    if (!made.ok()) return std::move(made).err();
    _objects.emplace(key, made.value());
    return made.value();
  }

  template <typename T>
  std::shared_ptr<T> find(const std::string& name = {}) const {
    std::lock_guard lock(_mu);
    auto it = _objects.find(std::make_pair(std::type_index(typeid(T)), name));
    return it == _objects.end() ? nullptr : std::static_pointer_cast<T>(it->second);
  }

  template <typename T>
  void put(const std::string& name, std::shared_ptr<T> object) {
    std::lock_guard lock(_mu);
    _objects[std::make_pair(std::type_index(typeid(T)), name)] = std::move(object);
  }

 private:
  // Recursive: a factory may ask for other objects (a node kind's service
  // asks for the directory's store and log) while its own is being made.
  mutable std::recursive_mutex _mu;
  std::map<std::pair<std::type_index, std::string>, std::shared_ptr<void>> _objects;
};

}  // namespace esflow
