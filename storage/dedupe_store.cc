#include "storage/dedupe_store.h"

#include "storage/codec.h"
#include "storage/keys.h"

#include <cstring>

namespace esflow::storage {
namespace {
// Set on the origin byte of entries whose request hash is 32 SHA-256 bytes;
// entries without it carry the older varint FNV-1a hash.
constexpr std::uint8_t k_sha256_layout = 0x10;
}  // namespace

std::string dedupe_store::encode(dedupe_origin origin, const dedupe_record& d) {
  std::string out;
  out.reserve(dedupe_expiry_bytes + 1 + d.request_hash.bytes.size() +
              std::size_t{3} * 10);  // three varints of <= 10 bytes
  keys::put_u64_be(out, d.expires_ms);
  codec::writer w(out);
  w.u8(static_cast<std::uint8_t>(origin) | k_sha256_layout);
  w.raw(d.request_hash.view());
  w.varint(d.position);
  w.varint(d.first_version);
  w.varint(d.last_version);
  return out;
}

bool dedupe_store::decode(std::string_view value, dedupe_origin origin, dedupe_record& d) {
  if (value.size() < dedupe_expiry_bytes) return false;
  d.expires_ms = keys::get_u64_be(value);
  codec::reader r(value.substr(dedupe_expiry_bytes));
  std::uint8_t layout = r.u8();
  if ((layout & ~k_sha256_layout) != static_cast<std::uint8_t>(origin)) return false;
  if ((layout & k_sha256_layout) != 0) {
    auto hash = r.raw(d.request_hash.bytes.size());
    if (hash.size() != d.request_hash.bytes.size()) return false;  // truncated
    std::memcpy(d.request_hash.bytes.data(), hash.data(), hash.size());
  } else {
    (void)r.varint();  // the older 64-bit hash: see decode() in dedupe_store.h
    d.request_hash = {};
  }
  d.position = r.varint();
  d.first_version = r.varint();
  d.last_version = r.varint();
  return r.ok();
}

result<std::optional<dedupe_record>> dedupe_store::get(std::string_view tenant, std::string_view command_id,
                                                       dedupe_origin origin, std::uint64_t now_ms) const {
  auto value = _space.get(keys::dedupe(tenant, command_id));
  if (!value.ok()) return std::move(value).err();
  if (!value.value()) return std::optional<dedupe_record>{};
  dedupe_record d;
  if (!decode(**value, origin, d) || d.expires_ms < now_ms) return std::optional<dedupe_record>{};
  return std::optional<dedupe_record>{d};
}

void dedupe_store::put(write_set& ws, std::string_view tenant, std::string_view command_id,
                       dedupe_origin origin, const dedupe_record& record) const {
  _space.put(ws, keys::dedupe(tenant, command_id), encode(origin, record));
}

}  // namespace esflow::storage
