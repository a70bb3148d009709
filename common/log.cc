#include "common/log.h"

#include "common/log_context.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <ctime>
#include <mutex>

namespace esflow {

namespace {

constexpr const char* k_text_pattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ [%n] %v (%s:%#)";

std::atomic<log_format> g_format{log_format::text};
thread_local const log_fields* t_fields = nullptr;

void append(spdlog::memory_buf_t& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629), 0 if there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return i + k < s.size() && at(k) >= lo && at(k) <= hi;
  };
  const unsigned char c = at(0);
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// A JSON string for any bytes: quotes, backslashes and control bytes escaped,
// each byte of an invalid UTF-8 sequence replaced by U+FFFD.
void append_json_string(spdlog::memory_buf_t& out, std::string_view s) {
  static constexpr char k_hex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const auto n = utf8_length(s, i);
      if (n == 0) {
        append(out, "\\ufffd");
        ++i;
      } else {
        append(out, s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        append(out, "\\\"");
        break;
      case '\\':
        append(out, "\\\\");
        break;
      case '\n':
        append(out, "\\n");
        break;
      case '\r':
        append(out, "\\r");
        break;
      case '\t':
        append(out, "\\t");
        break;
      case '\b':
        append(out, "\\b");
        break;
      case '\f':
        append(out, "\\f");
        break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', k_hex[c >> 4], k_hex[c & 0xf]};
          out.append(esc, esc + sizeof esc);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

void append_field(spdlog::memory_buf_t& out, std::string_view key, std::string_view value) {
  out.push_back(',');
  append_json_string(out, key);
  out.push_back(':');
  append_json_string(out, value);
}

// The names --log-level takes (spdlog's own say "warning", "err").
std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    // RFC 3339 UTC with milliseconds, as the text format's time.
    const auto since = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    const std::time_t t = secs.count();
    std::tm tm{};
    gmtime_r(&t, &tm);
    char time[32];
    const auto n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(time + n, sizeof time - n, ".%03dZ", static_cast<int>(ms));

    append(dest, "{\"time\":");
    append_json_string(dest, time);
    append_field(dest, "level", level_name(msg.level));
    append_field(dest, "module", std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append_field(dest, "message", std::string_view(msg.payload.data(), msg.payload.size()));
    if (!msg.source.empty()) {
      std::string_view file = msg.source.filename;
      if (const auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
      char line[16];
      const auto len = std::snprintf(line, sizeof line, ":%d", msg.source.line);
      spdlog::memory_buf_t source;
      append(source, file);
      source.append(line, line + len);
      append_field(dest, "source", std::string_view(source.data(), source.size()));
    }
    if (const auto* f = current_log_fields()) {
      if (!f->tenant_id.empty()) append_field(dest, "tenant_id", f->tenant_id);
      if (!f->correlation_id.empty()) append_field(dest, "correlation_id", f->correlation_id);
      if (!f->trace_id.empty()) append_field(dest, "trace_id", f->trace_id);
      if (!f->aggregate_type.empty() || !f->aggregate_id.empty()) {
        spdlog::memory_buf_t agg;
        append(agg, f->aggregate_type);
        if (!f->aggregate_type.empty() && !f->aggregate_id.empty()) agg.push_back('/');
        append(agg, f->aggregate_id);
        append_field(dest, "aggregate", std::string_view(agg.data(), agg.size()));
      }
      if (!f->saga.empty()) append_field(dest, "saga", f->saga);
      if (!f->view.empty()) append_field(dest, "view", f->view);
    }
    append(dest, "}");
    append(dest, spdlog::details::os::default_eol);
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

void apply_format(spdlog::logger& logger, log_format format) {
  if (format == log_format::json) {
    logger.set_formatter(make_json_formatter());
  } else {
    logger.set_pattern(k_text_pattern, spdlog::pattern_time_type::utc);
  }
}

std::mutex& loggers_mu() {
  static std::mutex mu;
  return mu;
}

}  // namespace

const log_fields* current_log_fields() noexcept { return t_fields; }
const log_fields* detail::exchange_log_fields(const log_fields* next) noexcept {
  const auto* previous = t_fields;
  t_fields = next;
  return previous;
}

std::unique_ptr<spdlog::formatter> make_json_formatter() { return std::make_unique<json_formatter>(); }

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "text") return log_format::text;
  if (name == "json") return log_format::json;
  return std::nullopt;
}

void set_log_format(log_format format) {
  std::lock_guard lock(loggers_mu());
  g_format.store(format);
  spdlog::apply_all([format](const std::shared_ptr<spdlog::logger>& l) { apply_format(*l, format); });
}

spdlog::logger& module_logger(const char* module) {
  std::lock_guard lock(loggers_mu());
  auto existing = spdlog::get(module);
  if (existing) return *existing;
  auto logger = spdlog::stderr_color_mt(module);
  apply_format(*logger, g_format.load());
  logger->set_level(spdlog::get_level());
  return *logger;
}

}  // namespace esflow
