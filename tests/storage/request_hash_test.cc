// The request hash (SHA-256 over length-prefixed fields) and the dedupe
// codec that stores it: full 256 bits, the same digest in every process,
// and entries of the older 64-bit layout decoded without harm.
#include "storage/dedupe_store.h"
#include "storage/event_log.h"
#include "storage/keys.h"

#include <gtest/gtest.h>

#include <string>

namespace esflow::storage {
namespace {

TEST(request_hash, is_sha256_of_length_prefixed_fields) {
  // sha256(le64(7) "account" le64(3) "a-1" le64(12) '{"amount":5}'), computed
  // outside esflow: a fixed value, equal in every process and build.
  EXPECT_EQ(request_hash("account", "a-1", R"({"amount":5})").to_hex(),
            "48af2c7b095a3ea2f04761228693a3f8c97a577af0dd2d18f12d249e469aab45");
  // Moving bytes across a field boundary changes the digest.
  EXPECT_NE(request_hash("ab", "c", "{}"), request_hash("a", "bc", "{}"));
  EXPECT_NE(request_hash("account", "a-1", R"({"amount":5})"),
            request_hash("account", "a-1", R"({"amount":6})"));
}

TEST(dedupe_codec, round_trips_the_whole_sha256_hash) {
  dedupe_record in{1234, request_hash("account", "a-1", "{}"), 55, 3, 4};
  auto value = dedupe_store::encode(dedupe_origin::embedded, in);
  dedupe_record out;
  ASSERT_TRUE(dedupe_store::decode(value, dedupe_origin::embedded, out));
  EXPECT_EQ(out.expires_ms, 1234U);
  EXPECT_EQ(out.request_hash, in.request_hash);
  EXPECT_EQ(out.position, 55U);
  EXPECT_EQ(out.first_version, 3U);
  EXPECT_EQ(out.last_version, 4U);
  EXPECT_FALSE(dedupe_store::decode(value, dedupe_origin::jetstream, out)) << "another backend's entry";

  // Every byte is kept: digests differing only in the last byte stay apart.
  dedupe_record other = in;
  other.request_hash.bytes[31] ^= 1;
  ASSERT_TRUE(dedupe_store::decode(dedupe_store::encode(dedupe_origin::embedded, other),
                                   dedupe_origin::embedded, out));
  EXPECT_NE(out.request_hash, in.request_hash);

  for (std::size_t cut = 0; cut < value.size(); ++cut) {
    EXPECT_FALSE(dedupe_store::decode(value.substr(0, cut), dedupe_origin::embedded, out)) << cut;
  }
}

TEST(dedupe_codec, an_entry_with_the_old_64_bit_hash_decodes_as_a_different_hash) {
  // The layout before SHA-256: expiry, origin byte, varint FNV-1a hash, then
  // position, first and last version as varints.
  std::string old;
  keys::put_u64_be(old, 5000);
  old.push_back(static_cast<char>(dedupe_origin::embedded));
  old.append("\xef\xbe\xad\xde\x0f", 5);  // varint 0xdeadbeef
  old.append("\x07\x02\x03", 3);
  dedupe_record out;
  ASSERT_TRUE(dedupe_store::decode(old, dedupe_origin::embedded, out));
  EXPECT_EQ(out.expires_ms, 5000U);
  EXPECT_EQ(out.request_hash, sha256_digest{}) << "never equal to a real request hash";
  EXPECT_EQ(out.position, 7U);
  EXPECT_EQ(out.first_version, 2U);
  EXPECT_EQ(out.last_version, 3U);
}

}  // namespace
}  // namespace esflow::storage
