#include "stages/projection/row_value.h"

#include "storage/keys.h"

namespace esflow::projection {
namespace {
constexpr char k_format = 1;
constexpr std::size_t k_header = 2 + 8 + 8;
}  // namespace

std::string encode_row(const row_value& r) {
  std::string out;
  out.reserve(k_header + r.json.size());
  out.push_back(k_format);
  out.push_back(r.deleted ? 1 : 0);
  storage::keys::put_u64_be(out, r.version);
  storage::keys::put_u64_be(out, r.position);
  if (!r.deleted) out.append(r.json);
  return out;
}

std::optional<row_value> decode_row(std::string_view bytes) {
  if (bytes.size() < k_header || bytes[0] != k_format) return std::nullopt;
  row_value r;
  r.deleted = (bytes[1] & 1) != 0;
  r.version = storage::keys::get_u64_be(bytes.substr(2));
  r.position = storage::keys::get_u64_be(bytes.substr(10));
  r.json.assign(bytes.substr(k_header));
  if (r.deleted != r.json.empty()) return std::nullopt;
  return r;
}

}  // namespace esflow::projection
