#include "transport/nats/subjects.h"

#include <vector>

namespace esflow::nats {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

bool is_plain(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool all_plain(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_plain(c)) return false;
  }
  return true;
}

std::string escaped(std::string_view s) {
  std::string out;
  out.reserve(1 + 2 * s.size());
  out.push_back('~');
  for (unsigned char c : s) {
    out.push_back(hex_digits[c >> 4]);
    out.push_back(hex_digits[c & 0xF]);
  }
  return out;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::optional<std::string> unescaped(std::string_view token) {
  if (token.empty()) return std::nullopt;
  if (token[0] != '~') {
    if (!all_plain(token)) return std::nullopt;
    return std::string(token);
  }
  auto hex = token.substr(1);
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (auto p : parts) n += p.size() + 1;
  std::string out;
  out.reserve(n);
  for (auto p : parts) {
    if (!out.empty()) out.push_back('.');
    out.append(p);
  }
  return out;
}

}  // namespace

std::string tenant_token(std::string_view tenant) {
  if (tenant.empty()) return "_";
  if (tenant == "_") return escaped(tenant);
  return all_plain(tenant) ? std::string(tenant) : escaped(tenant);
}

std::string id_token(std::string_view id) { return all_plain(id) ? std::string(id) : escaped(id); }

std::optional<std::string> decode_tenant_token(std::string_view token) {
  if (token == "_") return std::string();
  return unescaped(token);
}

std::optional<std::string> decode_id_token(std::string_view token) { return unescaped(token); }

status validate_token(std::string_view token, std::string_view field) {
  if (token.empty()) {
    return error::make(errc::invalid_command, "field '" + std::string(field) + "' is empty");
  }
  for (unsigned char c : token) {
    if (c == '.' || c == '*' || c == '>' || c <= 0x20 || c == 0x7f) {
      return error::make(errc::invalid_command, "field '" + std::string(field) +
                                                    "' must not contain '.', '*', '>', whitespace or "
                                                    "control characters");
    }
  }
  return {};
}

std::string aggregate_subject(std::string_view tenant, std::string_view type, std::string_view id) {
  return join({"tenant", tenant_token(tenant), "aggregate", id_token(type), id_token(id)});
}

std::string command_subject(std::string_view tenant, std::string_view type, std::string_view id) {
  return join({"tenant", tenant_token(tenant), "command", id_token(type), id_token(id)});
}

std::string effect_subject(std::string_view tenant, std::string_view effect) {
  return join({"tenant", tenant_token(tenant), "effect", id_token(effect)});
}

std::string effect_result_subject(std::string_view tenant, std::string_view effect) {
  return join({"tenant", tenant_token(tenant), "effect_result", id_token(effect)});
}

std::string reminder_subject(std::string_view tenant, std::string_view saga) {
  return join({"tenant", tenant_token(tenant), "reminder", id_token(saga)});
}

std::string command_result_subject(std::string_view tenant, std::string_view saga) {
  return join({"tenant", tenant_token(tenant), "command_result", id_token(saga)});
}

std::string view_subject(std::string_view tenant, std::string_view view, std::string_view key) {
  return join({"tenant", tenant_token(tenant), "view", id_token(view), id_token(key)});
}

std::optional<aggregate_address> parse_aggregate_subject(std::string_view subject) {
  auto parts = split(subject);
  if (parts.size() != 5 || parts[0] != "tenant" || parts[2] != "aggregate") return std::nullopt;
  auto tenant = decode_tenant_token(parts[1]);
  auto type = decode_id_token(parts[3]);
  auto id = decode_id_token(parts[4]);
  if (!tenant || !type || !id) return std::nullopt;
  return aggregate_address{std::move(*tenant), std::move(*type), std::move(*id)};
}

bool subject_covers(std::string_view pattern, std::string_view subject) {
  auto p = split(pattern);
  auto s = split(subject);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return i < s.size();  // '>' needs at least one token
    if (i >= s.size()) return false;
    if (s[i] == ">") return false;  // subject's tail is wider than one pattern token
    if (p[i] == "*") continue;
    if (p[i] != s[i]) return false;
  }
  return p.size() == s.size();
}

}  // namespace esflow::nats
