#pragma once
// result<T>: a value or an esflow::error, returned across module boundaries.
// Ignoring a result on purpose is spelled `ignore(r)` so it can be grepped.
#include "common/error.h"

#include <cassert>
#include <utility>
#include <variant>

namespace esflow {

template <typename T>
class [[nodiscard]] result {
 public:
  result(T value) : _v(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : _v(std::in_place_index<1>, std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return _v.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(_v);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(_v);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(_v));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const& {
    assert(!ok());
    return std::get<1>(_v);
  }
  error&& err() && {
    assert(!ok());
    return std::get<1>(std::move(_v));
  }

 private:
  std::variant<T, error> _v;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : _err(std::move(e)), _ok(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const noexcept { return _ok; }
  explicit operator bool() const noexcept { return _ok; }
  const error& err() const& {
    assert(!_ok);
    return _err;
  }
  error&& err() && {
    assert(!_ok);
    return std::move(_err);
  }

 private:
  error _err;
  bool _ok = true;
};

using status = result<void>;

template <typename T>
void ignore(const result<T>&) noexcept {}

}  // namespace esflow
