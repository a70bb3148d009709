#pragma once
// One named spdlog logger per module; the macros add file:line.
#include <spdlog/spdlog.h>

namespace esflow {
// Returns the module's logger, creating it on first use (thread-safe).
spdlog::logger& module_logger(const char* module);
}  // namespace esflow

#define ESFLOW_LOG(module, level, ...)                                                                    \
  do {                                                                                                    \
    static spdlog::logger& esflow_logger_ = ::esflow::module_logger(module);                              \
    esflow_logger_.log(spdlog::source_loc{__FILE__, __LINE__, static_cast<const char*>(__func__)}, level, \
                       __VA_ARGS__);                                                                      \
  } while (false)
#define ESFLOW_INFO(module, ...) ESFLOW_LOG(module, spdlog::level::info, __VA_ARGS__)
#define ESFLOW_WARN(module, ...) ESFLOW_LOG(module, spdlog::level::warn, __VA_ARGS__)
#define ESFLOW_ERROR(module, ...) ESFLOW_LOG(module, spdlog::level::err, __VA_ARGS__)
#define ESFLOW_DEBUG(module, ...) ESFLOW_LOG(module, spdlog::level::debug, __VA_ARGS__)
