#pragma once
// Tokens of a filter. The lexer records each token's byte offset; messages turn it
// into a 1-based column counted in characters (UTF-8 code points).
#include "common/result.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::query {

enum class token_kind : std::uint8_t {
  ident,    // a path segment or a keyword (and, or, not, in, exists, true, false, null)
  integer,  // text holds the digits (with a leading '-')
  floating,
  string,  // text holds the unescaped value
  op,      // = == != < <= > >=
  dot,
  comma,
  lparen,
  rparen,
  lbracket,
  rbracket,
  end,
};

struct token {
  token_kind kind = token_kind::end;
  std::string text;
  std::size_t offset = 0;  // byte offset in the filter
};

// 1-based column of a byte offset, counted in UTF-8 code points.
std::size_t column_of(std::string_view text, std::size_t offset) noexcept;

// An invalid_query error "column <c>: <what>".
error query_error(std::string_view text, std::size_t offset, std::string_view what);

// Splits a filter into tokens ending with token_kind::end.
result<std::vector<token>> lex(std::string_view text);

}  // namespace esflow::query
