#include "runtime/lua_pattern.h"

#include <cstring>

namespace esflow::runtime::detail {
namespace {

constexpr char k_esc = '%';

// One step of matching work: a character tested or a branch tried.
inline void step(pattern_state& ms) { gas_charge(ms.L, *ms.gas, 1, ms.fn); }

[[noreturn]] void pattern_error(pattern_state& ms, const char* what) {
  luaL_error(ms.L, "%s: %s", ms.fn, what);
  __builtin_unreachable();
}

// Character classes of the C locale, spelled out so that a match never
// depends on the process's locale.
bool is_lower(unsigned c) { return c >= 'a' && c <= 'z'; }
bool is_upper(unsigned c) { return c >= 'A' && c <= 'Z'; }
bool is_alpha(unsigned c) { return is_lower(c) || is_upper(c); }
bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }
bool is_alnum(unsigned c) { return is_alpha(c) || is_digit(c); }
bool is_space(unsigned c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_cntrl(unsigned c) { return c < 0x20 || c == 0x7f; }
bool is_graph(unsigned c) { return c > 0x20 && c < 0x7f; }
bool is_punct(unsigned c) { return is_graph(c) && !is_alnum(c); }
bool is_xdigit(unsigned c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// c against the class letter cl (%a, %d, ...; upper case negates); any other
// cl stands for itself.
bool class_matches(unsigned c, unsigned cl) {
  bool hit;
  switch (cl | 0x20) {  // lower case
    case 'a':
      hit = is_alpha(c);
      break;
    case 'c':
      hit = is_cntrl(c);
      break;
    case 'd':
      hit = is_digit(c);
      break;
    case 'g':
      hit = is_graph(c);
      break;
    case 'l':
      hit = is_lower(c);
      break;
    case 'p':
      hit = is_punct(c);
      break;
    case 's':
      hit = is_space(c);
      break;
    case 'u':
      hit = is_upper(c);
      break;
    case 'w':
      hit = is_alnum(c);
      break;
    case 'x':
      hit = is_xdigit(c);
      break;
    default:
      return cl == c;
  }
  return is_upper(cl) ? !hit : hit;
}

// c against the set [p .. close], p at '[' and close at its ']'.
bool set_matches(unsigned c, const char* p, const char* close) {
  bool want = true;
  ++p;
  if (*p == '^') {
    want = false;
    ++p;
  }
  for (; p < close; ++p) {
    if (*p == k_esc) {
      ++p;
      if (class_matches(c, static_cast<unsigned char>(*p))) return want;
    } else if (p[1] == '-' && p + 2 < close) {
      auto lo = static_cast<unsigned char>(p[0]);
      auto hi = static_cast<unsigned char>(p[2]);
      p += 2;
      if (lo <= c && c <= hi) return want;
    } else if (static_cast<unsigned char>(*p) == c) {
      return want;
    }
  }
  return !want;
}

// The end of the single-character class that starts at p.
const char* item_end(pattern_state& ms, const char* p) {
  char c = *p++;
  if (c == k_esc) {
    if (p >= ms.pat_end) pattern_error(ms, "malformed pattern (ends with '%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < ms.pat_end && *p == '^') ++p;
    // The first character of a set is never its closing ']' ("[]]" holds ']').
    do {
      if (p >= ms.pat_end) pattern_error(ms, "malformed pattern (missing ']')");
      char d = *p++;
      if (d == k_esc && p < ms.pat_end) ++p;
    } while (p >= ms.pat_end || *p != ']');
    return p + 1;
  }
  return p;
}

// Does the character at s match the single-character class [p, ep)?
bool item_matches(pattern_state& ms, const char* s, const char* p, const char* ep) {
  if (s >= ms.src_end) return false;
  step(ms);
  auto c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.':
      return true;
    case k_esc:
      return class_matches(c, static_cast<unsigned char>(p[1]));
    case '[':
      return set_matches(c, p, ep - 1);
    default:
      return static_cast<unsigned char>(*p) == c;
  }
}

const char* match_balance(pattern_state& ms, const char* s, const char* p) {
  if (p + 1 >= ms.pat_end) pattern_error(ms, "malformed pattern (missing arguments to '%b')");
  if (s >= ms.src_end || *s != p[0]) return nullptr;
  char open = p[0];
  char close = p[1];
  int depth = 1;
  while (++s < ms.src_end) {
    step(ms);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      ++depth;
    }
  }
  return nullptr;
}

const char* match_backref(pattern_state& ms, const char* s, char digit) {
  int i = digit - '1';
  if (i < 0 || i >= ms.level || ms.capture[i].len == k_cap_open) {
    luaL_error(ms.L, "%s: invalid capture index %%%d", ms.fn, i + 1);
  }
  std::ptrdiff_t len = ms.capture[i].len;
  if (len < 0) return nullptr;  // a position capture holds no text
  gas_charge(ms.L, *ms.gas, 1 + static_cast<std::uint64_t>(len) / 16, ms.fn);
  if (ms.src_end - s >= len && std::memcmp(ms.capture[i].init, s, static_cast<std::size_t>(len)) == 0) {
    return s + len;
  }
  return nullptr;
}

const char* match_open(pattern_state& ms, const char* s, const char* p, std::ptrdiff_t what) {
  if (ms.level >= k_max_captures) pattern_error(ms, "too many captures");
  ms.capture[ms.level] = {s, what};
  ++ms.level;
  const char* res = pattern_match(ms, s, p);
  if (res == nullptr) --ms.level;
  return res;
}

const char* match_close(pattern_state& ms, const char* s, const char* p) {
  int i = ms.level - 1;
  while (i >= 0 && ms.capture[i].len != k_cap_open) --i;
  if (i < 0) pattern_error(ms, "invalid pattern capture");
  ms.capture[i].len = s - ms.capture[i].init;
  const char* res = pattern_match(ms, s, p);
  if (res == nullptr) ms.capture[i].len = k_cap_open;
  return res;
}

// item* / item+ (after the first): the longest run first, then shorter ones.
const char* expand_greedy(pattern_state& ms, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t n = 0;
  while (item_matches(ms, s + n, p, ep)) ++n;
  for (; n >= 0; --n) {
    const char* res = pattern_match(ms, s + n, ep + 1);
    if (res != nullptr) return res;
  }
  return nullptr;
}

// item-: the shortest run first.
const char* expand_lazy(pattern_state& ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    const char* res = pattern_match(ms, s, ep + 1);
    if (res != nullptr) return res;
    if (!item_matches(ms, s, p, ep)) return nullptr;
    ++s;
  }
}

const char* match_here(pattern_state& ms, const char* s, const char* p) {
  for (;;) {
    step(ms);
    if (p == ms.pat_end) return s;
    switch (*p) {
      case '(':
        if (p + 1 < ms.pat_end && p[1] == ')') return match_open(ms, s, p + 2, k_cap_position);
        return match_open(ms, s, p + 1, k_cap_open);
      case ')':
        return match_close(ms, s, p + 1);
      case '$':
        if (p + 1 == ms.pat_end) return s == ms.src_end ? s : nullptr;
        break;  // a '$' elsewhere is a plain character
      case k_esc:
        if (p + 1 < ms.pat_end) {
          char next = p[1];
          if (next == 'b') {
            s = match_balance(ms, s, p + 2);
            if (s == nullptr) return nullptr;
            p += 4;
            continue;
          }
          if (next == 'f') {
            p += 2;
            if (p >= ms.pat_end || *p != '[') pattern_error(ms, "missing '[' after '%f' in pattern");
            const char* ep = item_end(ms, p);
            auto prev = static_cast<unsigned char>(s == ms.src_init ? '\0' : s[-1]);
            auto cur = static_cast<unsigned char>(s < ms.src_end ? *s : '\0');
            if (set_matches(prev, p, ep - 1) || !set_matches(cur, p, ep - 1)) return nullptr;
            p = ep;
            continue;
          }
          if (is_digit(static_cast<unsigned char>(next))) {
            s = match_backref(ms, s, next);
            if (s == nullptr) return nullptr;
            p += 2;
            continue;
          }
        }
        break;
      default:
        break;
    }
    // A single-character class, maybe with a repetition suffix.
    const char* ep = item_end(ms, p);
    char suffix = ep < ms.pat_end ? *ep : '\0';
    if (!item_matches(ms, s, p, ep)) {
      if (suffix == '*' || suffix == '?' || suffix == '-') {
        p = ep + 1;  // zero repetitions are fine
        continue;
      }
      return nullptr;
    }
    switch (suffix) {
      case '?': {
        const char* res = pattern_match(ms, s + 1, ep + 1);
        if (res != nullptr) return res;
        p = ep + 1;
        continue;
      }
      case '+':
        return expand_greedy(ms, s + 1, p, ep);
      case '*':
        return expand_greedy(ms, s, p, ep);
      case '-':
        return expand_lazy(ms, s, p, ep);
      default:
        ++s;
        p = ep;
        continue;
    }
  }
}

}  // namespace

void pattern_init(pattern_state& ms, lua_State* L, gas_meter* gas, const char* fn, const char* s,
                  std::size_t ls, const char* p, std::size_t lp) {
  ms.L = L;
  ms.gas = gas;
  ms.fn = fn;
  ms.src_init = s;
  ms.src_end = s + ls;
  ms.pat_end = p + lp;
  pattern_reset(ms);
}

const char* pattern_match(pattern_state& ms, const char* s, const char* p) {
  if (ms.depth-- == 0) pattern_error(ms, "pattern too complex");
  const char* res = match_here(ms, s, p);
  ++ms.depth;
  return res;
}

void pattern_push_capture(pattern_state& ms, int i, const char* s, const char* e) {
  if (i >= ms.level) {
    if (i != 0) luaL_error(ms.L, "%s: invalid capture index %%%d", ms.fn, i + 1);
    lua_pushlstring(ms.L, s, static_cast<std::size_t>(e - s));  // no captures: the whole match
    return;
  }
  const pattern_capture& c = ms.capture[i];
  if (c.len == k_cap_open) pattern_error(ms, "unfinished capture");
  if (c.len == k_cap_position) {
    lua_pushinteger(ms.L, static_cast<lua_Integer>(c.init - ms.src_init) + 1);
  } else {
    lua_pushlstring(ms.L, c.init, static_cast<std::size_t>(c.len));
  }
}

int pattern_push_captures(pattern_state& ms, const char* s, const char* e) {
  int n = (ms.level == 0 && s != nullptr) ? 1 : ms.level;
  luaL_checkstack(ms.L, n, "too many captures");
  for (int i = 0; i < n; ++i) pattern_push_capture(ms, i, s, e);
  return n;
}

bool pattern_has_specials(const char* p, std::size_t lp) {
  static constexpr char specials[] = "^$*+?.([%-";
  for (std::size_t i = 0; i < lp; ++i) {
    if (std::memchr(specials, p[i], sizeof specials - 1) != nullptr) return true;
  }
  return false;
}

}  // namespace esflow::runtime::detail
