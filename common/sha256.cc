#include "common/sha256.h"

#include <cstdio>
#include <cstdlib>
#include <openssl/evp.h>

namespace esflow {
namespace {

// SHA-256 from OpenSSL's default provider fails only when memory runs out;
// there is no caller that could answer that better than stopping.
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "esflow: OpenSSL SHA-256 %s failed\n", what);
  std::abort();
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Fetched once: EVP_sha256() makes every EVP_DigestInit look the algorithm up
// by name in the provider store (a lock, string compares, an allocation),
// which cost more than hashing a command (docs/performance.md). Process-wide,
// never freed: it is used until exit.
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (fetched == nullptr) fail("EVP_MD_fetch");
    return fetched;
  }();
  return md;
}

}  // namespace

sha256_digest sha256_digest::of(std::string_view data) {
  sha256_digest d;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.bytes.data(), &len, sha256_md(), nullptr) != 1 ||
      len != d.bytes.size()) {
    fail("EVP_Digest");
  }
  return d;
}

std::string sha256_digest::to_hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(64, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0xf];
  }
  return out;
}

std::optional<sha256_digest> sha256_digest::from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  sha256_digest d;
  for (std::size_t i = 0; i < d.bytes.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d.bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return d;
}

sha256_builder::sha256_builder() : _ctx(EVP_MD_CTX_new()) {
  if (_ctx == nullptr) fail("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(_ctx, sha256_md(), nullptr) != 1) fail("EVP_DigestInit_ex");
}

sha256_builder::~sha256_builder() { EVP_MD_CTX_free(_ctx); }

sha256_builder& sha256_builder::update(std::string_view data) {
  if (EVP_DigestUpdate(_ctx, data.data(), data.size()) != 1) fail("EVP_DigestUpdate");
  return *this;
}

sha256_builder& sha256_builder::field(std::string_view data) {
  unsigned char len[8];
  auto n = static_cast<std::uint64_t>(data.size());
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  update({reinterpret_cast<const char*>(len), sizeof len});
  return update(data);
}

sha256_digest sha256_builder::finish() {
  sha256_digest d;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(_ctx, d.bytes.data(), &len) != 1 || len != d.bytes.size()) {
    fail("EVP_DigestFinal_ex");
  }
  return d;
}

}  // namespace esflow
