#pragma once
// One named spdlog logger per module; the macros add file:line. Lines are
// text (the default) or one JSON object each (set_log_format; common/README.md,
// "Logging"); the JSON form adds the thread's log_scope ids (common/log_context.h).
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string_view>

namespace esflow {
// Returns the module's logger, creating it on first use (thread-safe).
spdlog::logger& module_logger(const char* module);

enum class log_format { text, json };
// "text" | "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);
// Applies to every module logger, existing and future.
void set_log_format(log_format format);

// The JSON line formatter: {"time","level","module","message","source"?, and
// the current log_scope's ids}. Exposed for tests.
std::unique_ptr<spdlog::formatter> make_json_formatter();
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
