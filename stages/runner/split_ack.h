#pragma once
// One ingest message that became several (a commit whose events touch
// several saga instances): the original ack is settled once every part is —
// acked when all parts were, nak'ed when any part was.
//
// NOTE: thread-safe; each part's ack()/nak() counts once.
#include "stages/ingest_context.h"

#include <atomic>
#include <memory>

namespace esflow::runner {

class split_ack_state {
 public:
  split_ack_state(std::shared_ptr<stages::ingest_ack> original, int parts)
      : _original(std::move(original)), _remaining(parts) {}
  void settle(bool failed) {
    if (failed) _failed = true;
    if (_remaining.fetch_sub(1) != 1 || !_original) return;
    if (_failed)
      _original->nak();
    else
      _original->ack();
  }

 private:
  std::shared_ptr<stages::ingest_ack> _original;
  std::atomic<int> _remaining;
  std::atomic<bool> _failed{false};
};

class split_ack final : public stages::ingest_ack {
 public:
  explicit split_ack(std::shared_ptr<split_ack_state> state) : _state(std::move(state)) {}
  void ack() override {
    if (!_settled.exchange(true)) _state->settle(false);
  }
  void nak() override {
    if (!_settled.exchange(true)) _state->settle(true);
  }

 private:
  std::shared_ptr<split_ack_state> _state;
  std::atomic<bool> _settled{false};
};

}  // namespace esflow::runner
