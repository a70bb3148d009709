#include "stages/runner/effect_executor.h"

#include "common/log.h"

#include <exception>
#include <random>

namespace esflow::runner {

effect_executor::upstream_state::upstream_state(effect_upstream u, const circuit_breaker::now_fn& now)
    : config(std::move(u.config)),
      provider(std::move(u.provider)),
      breaker(config.breaker, now),
      policy(config) {}

effect_executor::effect_executor(const std::vector<effect_config>& configs, effect_executor_options options)
    : _capacity(options.queue_capacity) {
  for (const auto& c : configs) {
    effect_upstream u{c, make_effect_provider(c)};
    _upstreams[c.name] = std::make_unique<upstream_state>(std::move(u), options.now);
  }
  start(options.threads, options.seed);
}

effect_executor::effect_executor(std::vector<effect_upstream> upstreams, effect_executor_options options)
    : _capacity(options.queue_capacity) {
  for (auto& u : upstreams) {
    auto name = u.config.name;
    _upstreams[name] = std::make_unique<upstream_state>(std::move(u), options.now);
  }
  start(options.threads, options.seed);
}

effect_executor::~effect_executor() { stop(); }

void effect_executor::start(std::size_t threads, std::optional<std::uint64_t> seed) {
  if (threads == 0) threads = 1;
  const std::uint64_t base =
      seed ? *seed : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  _threads.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) _threads.emplace_back([this, s = base + i] { run(s); });
}

void effect_executor::execute(effect_call call, done_fn done) {
  _metrics.calls.fetch_add(1, std::memory_order_relaxed);
  const auto it = _upstreams.find(call.effect);
  job j{it == _upstreams.end() ? nullptr : it->second.get(), std::move(call), std::move(done)};
  if (j.upstream == nullptr) {
    _metrics.rejected.fetch_add(1, std::memory_order_relaxed);
    finish(j, effect_outcome::failure("unknown effect '" + j.call.effect + "'", false), 0);
    return;
  }
  {
    std::unique_lock lock(_mutex);
    if (!_stopping && _queue.size() < _capacity) {
      _queue.push_back(std::move(j));
      lock.unlock();
      _work_cv.notify_one();
      return;
    }
  }
  _metrics.rejected.fetch_add(1, std::memory_order_relaxed);
  bool stopping = false;
  {
    std::lock_guard lock(_mutex);
    stopping = _stopping;
  }
  finish(
      j,
      effect_outcome::unavailable(stopping ? "the effect executor is stopped" : "the effect queue is full"),
      0);
}

void effect_executor::run(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (;;) {
    job j;
    bool stopping = false;
    {
      std::unique_lock lock(_mutex);
      _work_cv.wait(lock, [&] { return _stopping || !_queue.empty(); });
      if (_queue.empty()) return;  // stopping, nothing left
      j = std::move(_queue.front());
      _queue.pop_front();
      stopping = _stopping;
    }
    if (stopping) {
      finish(j, effect_outcome::unavailable("the effect executor stopped before the call ran"), 0);
      continue;
    }
    perform(j, rng);
  }
}

void effect_executor::perform(job& j, std::mt19937_64& rng) {
  auto& up = *j.upstream;
  const auto start = std::chrono::steady_clock::now();
  int attempts = 0;
  effect_outcome outcome;
  for (;;) {
    if (!up.breaker.allow()) {
      _metrics.breaker_open.fetch_add(1, std::memory_order_relaxed);
      outcome = effect_outcome::failure("circuit open: effect '" + up.config.name + "' is failing", true,
                                        outcome.http_status);
      break;
    }
    ++attempts;
    _metrics.attempts.fetch_add(1, std::memory_order_relaxed);
    if (attempts > 1) _metrics.retries.fetch_add(1, std::memory_order_relaxed);
    try {
      outcome = up.provider->attempt(j.call, _stop_source.get_token());
    } catch (const std::exception& e) {
      outcome = effect_outcome::failure(std::string("provider threw: ") + e.what(), true);
    } catch (...) {
      outcome = effect_outcome::failure("provider threw", true);
    }
    if (outcome.succeeded() || !outcome.retryable) {
      up.breaker.on_success();  // the upstream answered
    } else {
      up.breaker.on_failure();
    }
    if (!up.policy.should_retry(outcome, attempts)) break;
    const auto wait = up.policy.delay(attempts, rng);
    std::unique_lock lock(_mutex);
    if (_stop_cv.wait_for(lock, wait, [&] { return _stopping; })) {
      if (outcome.error.starts_with("unavailable: ")) break;  // the attempt itself was stopped
      outcome = effect_outcome::failure(
          "unavailable: the effect executor stopped during the backoff (last attempt: " + outcome.error + ")",
          true, outcome.http_status);
      break;
    }
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
  _metrics.duration_us.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
  if (!outcome.succeeded())
    ESFLOW_DEBUG("runner", "effect {} tenant={} command_id={} failed after {} attempt(s): {}", up.config.name,
                 j.call.tenant, j.call.command_id, attempts, outcome.error);
  finish(j, std::move(outcome), attempts);
}

void effect_executor::finish(job& j, effect_outcome outcome, int attempts) {
  (outcome.succeeded() ? _metrics.succeeded : _metrics.failed).fetch_add(1, std::memory_order_relaxed);
  if (!j.done) return;
  try {
    j.done(std::move(outcome), attempts);
  } catch (const std::exception& e) {
    ESFLOW_ERROR("runner", "effect {} command_id={}: the completion threw: {}", j.call.effect,
                 j.call.command_id, e.what());
  } catch (...) {
    ESFLOW_ERROR("runner", "effect {} command_id={}: the completion threw", j.call.effect, j.call.command_id);
  }
}

void effect_executor::stop() {
  std::lock_guard join_lock(_join_mutex);
  {
    std::lock_guard lock(_mutex);
    _stopping = true;
  }
  _stop_source.request_stop();
  _work_cv.notify_all();
  _stop_cv.notify_all();
  for (auto& t : _threads)
    if (t.joinable()) t.join();
}

const circuit_breaker* effect_executor::breaker(const std::string& effect) const {
  const auto it = _upstreams.find(effect);
  return it == _upstreams.end() ? nullptr : &it->second->breaker;
}

std::size_t effect_executor::queued() const {
  std::lock_guard lock(_mutex);
  return _queue.size();
}

}  // namespace esflow::runner
