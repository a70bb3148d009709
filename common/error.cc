#include "common/error.h"

#include <string_view>

namespace esflow {
namespace {
std::string_view basename_of(std::string_view path) {
  // Keep "module/file.cc": enough to find it, short enough for a log line.
  auto last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) return path;
  auto prev = path.rfind('/', last - 1);
  return prev == std::string_view::npos ? path : path.substr(prev + 1);
}
}  // namespace

error error::make(errc c, std::string msg, std::string ctx, std::source_location loc) {
  error e;
  e.code = c;
  e.code_text = std::string(esflow::to_string(c));
  e.message = std::move(msg);
  e.context = std::move(ctx);
  if (!e.context.empty()) e.context += ' ';
  e.context += "at ";
  e.context += basename_of(loc.file_name());
  e.context += ':';
  e.context += std::to_string(loc.line());
  return e;
}

error error::domain(std::string program_code, std::string msg) {
  error e;
  e.code = errc::domain_rejection;
  e.code_text = std::move(program_code);
  e.message = std::move(msg);
  return e;
}

error error::config(std::string msg) {
  error e;
  e.code = errc::invalid_config;
  e.code_text = "invalid_config";
  e.message = std::move(msg);
  return e;
}

std::string error::to_string() const {
  std::string out = code_text.empty() ? std::string(esflow::to_string(code)) : code_text;
  out += ": ";
  out += message;
  if (!context.empty()) {
    out += " (";
    out += context;
    out += ')';
  }
  return out;
}

}  // namespace esflow
