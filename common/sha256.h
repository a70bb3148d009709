#pragma once
// SHA-256 (OpenSSL's EVP API): the digest of a program file (`/info` shows
// what `sha256sum` prints) and of an append request (docs/contract.md
// "esflow-request-hash"), where a chosen collision would let a reused command
// id pass as a duplicate. Unkeyed on purpose: every process and node must
// compute the same digest.
//
// NOTE: thread-safe (no shared state); a sha256_builder belongs to one thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace esflow {

struct sha256_digest {
  std::array<std::uint8_t, 32> bytes{};

  static sha256_digest of(std::string_view data);
  // 64 lowercase hex digits (sha256sum's spelling).
  std::string to_hex() const;
  // Exactly 64 hex digits (either case); nullopt otherwise.
  static std::optional<sha256_digest> from_hex(std::string_view hex);
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  friend bool operator==(const sha256_digest&, const sha256_digest&) = default;
};

struct sha256_digest_hasher {
  std::size_t operator()(const sha256_digest& d) const noexcept {
    std::size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof h);  // already uniform
    return h;
  }
};

// Incremental SHA-256: feed bytes, then finish() once.
class sha256_builder {
 public:
  sha256_builder();
  ~sha256_builder();
  sha256_builder(const sha256_builder&) = delete;
  sha256_builder& operator=(const sha256_builder&) = delete;

  sha256_builder& update(std::string_view data);
  // The field's length (8 bytes, little-endian) then its bytes, so
  // ("ab", "c") and ("a", "bc") differ.
  sha256_builder& field(std::string_view data);
  sha256_digest finish();

 private:
  evp_md_ctx_st* _ctx;
};

}  // namespace esflow
