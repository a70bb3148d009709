#include "storage/keys.h"

namespace esflow::storage::keys {

void put_str(std::string& out, std::string_view component) {
  if (component.size() < 0xFF) {
    out.push_back(static_cast<char>(component.size()));
  } else {
    out.push_back(static_cast<char>(0xFF));
    auto n = static_cast<std::uint32_t>(component.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  out.append(component);
}

void put_u64_be(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

std::uint64_t get_u64_be(std::string_view bytes) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

bool get_str(std::string_view key, std::size_t& pos, std::string_view& component) noexcept {
  if (pos >= key.size()) return false;
  std::size_t n = static_cast<unsigned char>(key[pos++]);
  if (n == 0xFF) {
    if (key.size() - pos < 4) return false;
    n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(key[pos++]);
  }
  if (key.size() - pos < n) return false;
  component = key.substr(pos, n);
  pos += n;
  return true;
}

std::string position(position_t p) {
  std::string out;
  put_u64_be(out, p);
  return out;
}

std::string aggregate(std::string_view tenant, std::string_view type, std::string_view id) {
  std::string out;
  out.reserve(3 + tenant.size() + type.size() + id.size() + 8);
  put_str(out, tenant);
  put_str(out, type);
  put_str(out, id);
  return out;
}

std::string aggregate_version(std::string_view tenant, std::string_view type, std::string_view id,
                              version_t v) {
  auto out = aggregate(tenant, type, id);
  put_u64_be(out, v);
  return out;
}

std::string dedupe(std::string_view tenant, std::string_view command_id) {
  std::string out;
  put_str(out, tenant);
  put_str(out, command_id);
  return out;
}

std::string checkpoint(std::string_view tenant, std::string_view consumer) {
  return dedupe(tenant, consumer);
}

std::string quarantine(std::string_view source, std::uint64_t p) {
  std::string out;
  put_str(out, source);
  put_u64_be(out, p);
  return out;
}

std::string components(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) put_str(out, p);
  return out;
}

std::string saga(std::string_view tenant, std::string_view saga, std::string_view correlation_id) {
  return components({tenant, saga, correlation_id});
}

std::string outbox(std::string_view tenant, std::string_view kind, std::string_view work_id) {
  return components({tenant, kind, work_id});
}

std::string schedule(std::uint64_t due_ms, std::string_view tenant, std::string_view saga,
                     std::string_view correlation_id, std::string_view name) {
  std::string out;
  put_u64_be(out, due_ms);
  for (auto p : {tenant, saga, correlation_id, name}) put_str(out, p);
  return out;
}

std::string readmodel(std::string_view tenant, std::string_view view, std::string_view row_key) {
  return components({tenant, view, "r", row_key});
}

std::string tenant_prefix(std::string_view tenant) {
  std::string out;
  put_str(out, tenant);
  return out;
}

std::string prefix_successor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(out.back());
    if (last != 0xFF) {
      ++last;
      return out;
    }
    out.pop_back();
  }
  return out;
}

}  // namespace esflow::storage::keys
