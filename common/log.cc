#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace esflow {

spdlog::logger& module_logger(const char* module) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  auto existing = spdlog::get(module);
  if (existing) return *existing;
  auto logger = spdlog::stderr_color_mt(module);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v (%s:%#)", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::get_level());
  return *logger;
}

}  // namespace esflow
