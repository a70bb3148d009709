#include "query/lexer.h"

#include <string>

namespace esflow::query {

namespace {

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool op_char(char c) { return c == '=' || c == '!' || c == '<' || c == '>'; }

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) return "unexpected non-ASCII character";
  if (u < 0x20 || u == 0x7f) {
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("unexpected control character 0x") + hex[u >> 4] + hex[u & 0xf];
  }
  return std::string("unexpected character '") + c + "'";
}

}  // namespace

std::size_t column_of(std::string_view text, std::size_t offset) noexcept {
  std::size_t col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    // UTF-8 continuation bytes do not start a character.
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++col;
  }
  return col;
}

error query_error(std::string_view text, std::size_t offset, std::string_view what) {
  return error::make(errc::invalid_query,
                     "column " + std::to_string(column_of(text, offset)) + ": " + std::string(what));
}

result<std::vector<token>> lex(std::string_view text) {
  std::vector<token> out;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (true) {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
    if (i == n) break;
    const std::size_t start = i;
    const char c = text[i];
    if (ident_start(c)) {
      while (i < n && ident_char(text[i])) ++i;
      out.push_back({token_kind::ident, std::string(text.substr(start, i - start)), start});
    } else if (digit(c) || (c == '-' && i + 1 < n && digit(text[i + 1]))) {
      bool is_float = false;
      ++i;
      while (i < n && digit(text[i])) ++i;
      if (i < n && text[i] == '.') {
        if (i + 1 >= n || !digit(text[i + 1])) return query_error(text, i + 1, "expected a digit after '.'");
        is_float = true;
        ++i;
        while (i < n && digit(text[i])) ++i;
      }
      if (i < n && (text[i] == 'e' || text[i] == 'E')) {
        is_float = true;
        ++i;
        if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
        if (i >= n || !digit(text[i])) return query_error(text, i, "expected a digit in the exponent");
        while (i < n && digit(text[i])) ++i;
      }
      // "12abc" is one bad token, not a number followed by a path.
      if (i < n && ident_char(text[i])) return query_error(text, i, describe_char(text[i]) + " in a number");
      out.push_back({is_float ? token_kind::floating : token_kind::integer,
                     std::string(text.substr(start, i - start)), start});
    } else if (c == '"' || c == '\'') {
      std::string value;
      ++i;
      bool closed = false;
      while (i < n) {
        const char s = text[i];
        if (s == c) {
          closed = true;
          ++i;
          break;
        }
        if (s == '\\') {
          // Only the escapes the contract needs; anything else is likely a mistake.
          if (i + 1 >= n) break;
          const char e = text[i + 1];
          if (e != '"' && e != '\'' && e != '\\') {
            return query_error(text, i, std::string("unknown escape '\\") + e + "' in a string");
          }
          value.push_back(e);
          i += 2;
          continue;
        }
        value.push_back(s);
        ++i;
      }
      if (!closed) return query_error(text, start, "unterminated string");
      out.push_back({token_kind::string, std::move(value), start});
    } else if (op_char(c)) {
      // Take the whole run so "=<" or "<>" reads as one unknown operator.
      while (i < n && op_char(text[i])) ++i;
      std::string op(text.substr(start, i - start));
      if (op != "=" && op != "==" && op != "!=" && op != "<" && op != "<=" && op != ">" && op != ">=") {
        return query_error(text, start, "unknown operator '" + op + "'");
      }
      out.push_back({token_kind::op, std::move(op), start});
    } else {
      token_kind k;
      switch (c) {
        case '.':
          k = token_kind::dot;
          break;
        case ',':
          k = token_kind::comma;
          break;
        case '(':
          k = token_kind::lparen;
          break;
        case ')':
          k = token_kind::rparen;
          break;
        case '[':
          k = token_kind::lbracket;
          break;
        case ']':
          k = token_kind::rbracket;
          break;
        default:
          return query_error(text, start, describe_char(c));
      }
      ++i;
      out.push_back({k, std::string(1, c), start});
    }
  }
  out.push_back({token_kind::end, {}, n});
  return out;
}

}  // namespace esflow::query
