#include "schemas/ids.h"

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

namespace esflow::schemas {
namespace {

enum char_class : std::uint8_t {
  k_alpha = 1,       // A-Z a-z
  k_digit = 2,       // 0-9
  k_underscore = 4,  // _
  k_dash = 8,        // -
  k_dot_colon = 16,  // . :
  k_lower_hex = 32,  // 0-9 a-f
};

constexpr std::array<std::uint8_t, 256> make_class_table() {
  std::array<std::uint8_t, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= k_alpha;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= k_alpha;
  for (int c = '0'; c <= '9'; ++c) t[c] |= k_digit | k_lower_hex;
  for (int c = 'a'; c <= 'f'; ++c) t[c] |= k_lower_hex;
  t['_'] |= k_underscore;
  t['-'] |= k_dash;
  t['.'] |= k_dot_colon;
  t[':'] |= k_dot_colon;
  return t;
}
constexpr auto k_class = make_class_table();

inline bool all_of_class(std::string_view s, std::uint8_t mask) noexcept {
  for (unsigned char c : s) {
    if ((k_class[c] & mask) == 0) return false;
  }
  return true;
}

constexpr std::uint8_t k_id_chars = k_alpha | k_digit | k_underscore | k_dash;

constexpr char k_hex[] = "0123456789abcdef";

// splitmix64: small, fast, good enough for the random parts of ids (ids are
// unique, not secret).
struct rng {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

std::uint64_t seed_for_thread() {
  std::random_device rd;
  std::uint64_t s = (std::uint64_t{rd()} << 32) ^ rd();
  s ^= static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) *
       0x9e3779b97f4a7c15ULL;
  s ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return s;
}

rng& thread_rng() {
  thread_local rng r{seed_for_thread()};
  return r;
}

struct uuid_state {
  std::uint64_t last_ms = 0;
  std::uint64_t counter = 0;  // 42 bits
};

constexpr std::uint64_t k_counter_bits = 42;
constexpr std::uint64_t k_counter_limit = std::uint64_t{1} << k_counter_bits;

inline void write_hex_bytes(char* out, const std::uint8_t* bytes, int n) noexcept {
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    out[2 * i] = k_hex[bytes[i] >> 4];
    out[2 * i + 1] = k_hex[bytes[i] & 0x0f];
  }
}

inline void write_2(char* out, unsigned v) noexcept {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

inline bool all_zero(std::string_view s) noexcept {
  for (char c : s) {
    if (c != '0') return false;
  }
  return true;
}

inline bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned& out) noexcept {
  unsigned v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

// ---- validators -----------------------------------------------------------------

bool is_valid_tenant_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64 || id == "_") return false;
  return all_of_class(id, k_id_chars);
}

bool is_valid_aggregate_type(std::string_view type) noexcept {
  if (type.empty() || type.size() > 64) return false;
  if ((k_class[static_cast<unsigned char>(type[0])] & k_alpha) == 0) return false;
  return all_of_class(type.substr(1), k_alpha | k_digit | k_underscore);
}

bool is_valid_aggregate_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 128 && all_of_class(id, k_id_chars);
}

bool is_valid_command_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 128 && all_of_class(id, k_id_chars);
}

bool is_valid_correlation_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 128 && all_of_class(id, k_id_chars | k_dot_colon);
}

status validate_tenant(std::string_view tenant, bool single_tenant) {
  if (single_tenant) {
    if (tenant.empty()) return {};
    return error::make(errc::invalid_tenant, "tenant id must be empty in single-tenant mode");
  }
  if (tenant.empty()) return error::make(errc::invalid_tenant, "tenant id is required");
  if (tenant == "_") return error::make(errc::invalid_tenant, "tenant id '_' is reserved");
  if (!is_valid_tenant_id(tenant)) {
    return error::make(errc::invalid_tenant, "tenant id must match [A-Za-z0-9_-]{1,64}");
  }
  return {};
}

namespace {
status id_error(std::string_view field, std::string_view value, std::string_view rule) {
  std::string msg = "field '";
  msg += field;
  msg += value.empty() ? "' must not be empty" : "' must match ";
  if (!value.empty()) msg += rule;
  return error::make(errc::invalid_command, std::move(msg));
}
}  // namespace

status validate_aggregate_type(std::string_view type, std::string_view field) {
  if (is_valid_aggregate_type(type)) return {};
  return id_error(field, type, "[A-Za-z][A-Za-z0-9_]{0,63}");
}

status validate_aggregate_id(std::string_view id, std::string_view field) {
  if (is_valid_aggregate_id(id)) return {};
  return id_error(field, id, "[A-Za-z0-9_-]{1,128}");
}

status validate_command_id(std::string_view id, std::string_view field) {
  if (is_valid_command_id(id)) return {};
  return id_error(field, id, "[A-Za-z0-9_-]{1,128}");
}

// ---- UUID v7 ---------------------------------------------------------------------

void new_uuid_v7(char* out) noexcept {
  thread_local uuid_state st;
  rng& r = thread_rng();
  const auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count());
  if (now_ms > st.last_ms) {
    st.last_ms = now_ms;
    // Top bit clear: leaves 2^41 increments of headroom within one millisecond.
    st.counter = r.next() & ((k_counter_limit >> 1) - 1);
  } else {
    // Same millisecond or the clock went back: keep the last timestamp and count on.
    if (++st.counter >= k_counter_limit) {
      ++st.last_ms;
      st.counter = r.next() & ((k_counter_limit >> 1) - 1);
    }
  }
  const std::uint64_t ms = st.last_ms & 0xffffffffffffULL;
  const std::uint64_t rand_a = st.counter >> 30;                                         // 12 bits
  const std::uint64_t rand_b = ((st.counter & 0x3fffffffULL) << 32) | (r.next() >> 32);  // 62 bits
  std::uint8_t b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((rand_a >> 8) & 0x0f));
  b[7] = static_cast<std::uint8_t>(rand_a & 0xff);
  b[8] = static_cast<std::uint8_t>(0x80 | ((rand_b >> 56) & 0x3f));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<std::uint8_t>(rand_b >> (8 * (15 - i)));
  write_hex_bytes(out, b, 4);
  out[8] = '-';
  write_hex_bytes(out + 9, b + 4, 2);
  out[13] = '-';
  write_hex_bytes(out + 14, b + 6, 2);
  out[18] = '-';
  write_hex_bytes(out + 19, b + 8, 2);
  out[23] = '-';
  write_hex_bytes(out + 24, b + 10, 6);
}

std::string new_uuid_v7() {
  std::string s(36, '\0');
  new_uuid_v7(s.data());
  return s;
}

bool is_uuid_v7(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if ((k_class[static_cast<unsigned char>(s[i])] & k_lower_hex) == 0) {
      return false;
    }
  }
  if (s[14] != '7') return false;
  return s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b';
}

std::uint64_t uuid_v7_millis(std::string_view s) noexcept {
  if (s.size() < 13) return 0;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 13; ++i) {
    if (i == 8) continue;
    const char c = s[i];
    const std::uint64_t d = (c >= '0' && c <= '9')   ? static_cast<std::uint64_t>(c - '0')
                            : (c >= 'a' && c <= 'f') ? static_cast<std::uint64_t>(c - 'a' + 10)
                                                     : 0;
    v = (v << 4) | d;
  }
  return v;
}

// ---- trace context ----------------------------------------------------------------

std::optional<traceparent> parse_traceparent(std::string_view s) noexcept {
  // 00-<32>-<16>-<2>
  if (s.size() != 55) return std::nullopt;
  if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  traceparent tp{s.substr(3, 32), s.substr(36, 16), s.substr(53, 2)};
  if (!all_of_class(tp.trace_id, k_lower_hex) || !all_of_class(tp.parent_id, k_lower_hex) ||
      !all_of_class(tp.flags, k_lower_hex)) {
    return std::nullopt;
  }
  if (all_zero(tp.trace_id) || all_zero(tp.parent_id)) return std::nullopt;
  return tp;
}

std::string new_traceparent() {
  rng& r = thread_rng();
  std::uint8_t b[24];
  std::uint64_t words[3];
  do {
    words[0] = r.next();
    words[1] = r.next();
  } while (words[0] == 0 && words[1] == 0);
  do {
    words[2] = r.next();
  } while (words[2] == 0);
  for (int w = 0; w < 3; ++w) {
    for (int i = 0; i < 8; ++i) b[w * 8 + i] = static_cast<std::uint8_t>(words[w] >> (56 - 8 * i));
  }
  std::string s(55, '-');
  s[0] = '0';
  s[1] = '0';
  write_hex_bytes(s.data() + 3, b, 16);
  write_hex_bytes(s.data() + 36, b + 16, 8);
  s[53] = '0';
  s[54] = '1';  // sampled
  return s;
}

trace_context make_trace_context(std::string_view incoming_traceparent,
                                 std::string_view incoming_correlation_id) {
  trace_context ctx;
  if (auto tp = parse_traceparent(incoming_traceparent)) {
    ctx.traceparent.assign(incoming_traceparent);
  } else {
    ctx.traceparent = new_traceparent();
  }
  ctx.trace_id = ctx.traceparent.substr(3, 32);
  if (is_valid_correlation_id(incoming_correlation_id)) {
    ctx.correlation_id.assign(incoming_correlation_id);
  } else {
    ctx.correlation_id = new_uuid_v7();
  }
  return ctx;
}

// ---- timestamps --------------------------------------------------------------------

std::string format_timestamp(std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  const auto ms_tp = floor<milliseconds>(tp);
  const auto day = floor<days>(ms_tp);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms_tp - day};
  std::string s = "0000-00-00T00:00:00.000Z";
  int y = static_cast<int>(ymd.year());
  if (y < 0) y = 0;  // RFC 3339 has no negative years; clamp (never happens for real clocks)
  if (y > 9999) y = 9999;
  s[0] = static_cast<char>('0' + y / 1000);
  s[1] = static_cast<char>('0' + y / 100 % 10);
  s[2] = static_cast<char>('0' + y / 10 % 10);
  s[3] = static_cast<char>('0' + y % 10);
  write_2(s.data() + 5, static_cast<unsigned>(ymd.month()));
  write_2(s.data() + 8, static_cast<unsigned>(ymd.day()));
  write_2(s.data() + 11, static_cast<unsigned>(hms.hours().count()));
  write_2(s.data() + 14, static_cast<unsigned>(hms.minutes().count()));
  write_2(s.data() + 17, static_cast<unsigned>(hms.seconds().count()));
  const auto ms = static_cast<unsigned>(hms.subseconds().count());
  s[20] = static_cast<char>('0' + ms / 100);
  s[21] = static_cast<char>('0' + ms / 10 % 10);
  s[22] = static_cast<char>('0' + ms % 10);
  return s;
}

std::string now_timestamp() { return format_timestamp(std::chrono::system_clock::now()); }

bool is_valid_timestamp(std::string_view s) noexcept {
  if (s.size() != 24) return false;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
      s[23] != 'Z') {
    return false;
  }
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, ms = 0;
  if (!digits(s, 0, 4, y) || !digits(s, 5, 2, mo) || !digits(s, 8, 2, d) || !digits(s, 11, 2, h) ||
      !digits(s, 14, 2, mi) || !digits(s, 17, 2, se) || !digits(s, 20, 3, ms)) {
    return false;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{static_cast<int>(y)}, std::chrono::month{mo},
                                        std::chrono::day{d}};
  return ymd.ok() && h < 24 && mi < 60 && se < 60;
}

}  // namespace esflow::schemas
