#include "stages/position_tracker.h"

#include <algorithm>

namespace esflow::stages {

void position_tracker::reset(position_t start) {
  std::lock_guard lock(_mu);
  _in_flight.clear();
  _failed_min.reset();
  _passed = start;
  _cv.notify_all();
}

void position_tracker::begin(position_t p) {
  std::lock_guard lock(_mu);
  _in_flight.insert(p);
}

void position_tracker::passed(position_t p) {
  std::lock_guard lock(_mu);
  _passed = std::max(_passed, p);
  _cv.notify_all();
}

void position_tracker::done(position_t p) {
  std::lock_guard lock(_mu);
  _in_flight.erase(p);
  _cv.notify_all();
}

void position_tracker::failed(position_t p) {
  std::lock_guard lock(_mu);
  _in_flight.erase(p);
  _failed_min = _failed_min ? std::min(*_failed_min, p) : p;
}

void position_tracker::request_rewind(position_t to) {
  std::lock_guard lock(_mu);
  _failed_min = _failed_min ? std::min(*_failed_min, to + 1) : to + 1;
}

position_tracker::position_t position_tracker::watermark_locked() const {
  position_t w = _passed;
  if (!_in_flight.empty()) w = std::min(w, *_in_flight.begin() - 1);
  if (_failed_min) w = std::min(w, *_failed_min - 1);
  return w;
}

position_tracker::position_t position_tracker::watermark() const {
  std::lock_guard lock(_mu);
  return watermark_locked();
}

position_tracker::position_t position_tracker::watermark_with(position_t p) const {
  std::lock_guard lock(_mu);
  position_t w = _passed;
  for (auto q : _in_flight)
    if (q != p) {
      w = std::min(w, q - 1);
      break;
    }
  if (_failed_min) w = std::min(w, *_failed_min - 1);
  return w;
}

bool position_tracker::wait_for(position_t p, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(_mu);
  return _cv.wait_until(lock, deadline, [&] { return watermark_locked() >= p; });
}

std::optional<position_tracker::position_t> position_tracker::take_rewind() {
  std::lock_guard lock(_mu);
  if (!_failed_min || !_in_flight.empty()) return std::nullopt;
  const position_t from = *_failed_min - 1;
  _failed_min.reset();
  _passed = from;
  return from;
}

std::size_t position_tracker::in_flight() const {
  std::lock_guard lock(_mu);
  return _in_flight.size();
}

}  // namespace esflow::stages
