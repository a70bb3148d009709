#include "query/parser.h"

#include "query/lexer.h"

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <utility>

namespace esflow::query {

const char* to_string(cmp_op op) noexcept {
  switch (op) {
    case cmp_op::eq:
      return "=";
    case cmp_op::ne:
      return "!=";
    case cmp_op::lt:
      return "<";
    case cmp_op::le:
      return "<=";
    case cmp_op::gt:
      return ">";
    case cmp_op::ge:
      return ">=";
  }
  return "=";
}

namespace {

bool is_keyword(std::string_view s) {
  return s == "and" || s == "or" || s == "not" || s == "in" || s == "exists" || s == "true" || s == "false" ||
         s == "null";
}

std::string describe(const token& t) {
  switch (t.kind) {
    case token_kind::end:
      return "the end of the filter";
    case token_kind::string:
      return "a string";
    default:
      return "'" + t.text + "'";
  }
}

cmp_op op_of(std::string_view s) {
  if (s == "!=") return cmp_op::ne;
  if (s == "<") return cmp_op::lt;
  if (s == "<=") return cmp_op::le;
  if (s == ">") return cmp_op::gt;
  if (s == ">=") return cmp_op::ge;
  return cmp_op::eq;  // "=" and "=="
}

// Recursive descent over the token list; one function per precedence level
// (or < and < not < primary). and/or chains loop, so only '(' and 'not' recurse,
// and both count against max_nesting_depth.
class parser {
 public:
  parser(std::string_view text, std::vector<token> tokens) : _text(text), _tokens(std::move(tokens)) {}

  result<plan> run() {
    if (peek().kind == token_kind::end) return fail(peek(), "empty filter");
    auto root = parse_or(0);
    if (!root) return std::move(root).err();
    const token& t = peek();
    if (t.kind == token_kind::rparen) return fail(t, "')' without a matching '('");
    if (t.kind != token_kind::end)
      return fail(t, "expected 'and', 'or' or the end of the filter, found " + describe(t));
    return plan{std::move(root).value()};
  }

 private:
  const token& peek() const { return _tokens[_pos]; }
  const token& next() { return _tokens[_pos < _tokens.size() - 1 ? _pos++ : _pos]; }
  bool at_keyword(std::string_view kw) const { return peek().kind == token_kind::ident && peek().text == kw; }
  error fail(const token& t, std::string_view what) const { return query_error(_text, t.offset, what); }

  result<node> parse_or(int depth) { return parse_chain(depth, "or", node::kind::or_); }
  result<node> parse_and(int depth) { return parse_chain(depth, "and", node::kind::and_); }

  result<node> parse_chain(int depth, std::string_view kw, node::kind k) {
    auto first = k == node::kind::or_ ? parse_and(depth) : parse_not(depth);
    if (!first || !at_keyword(kw)) return first;
    node chain;
    chain.k = k;
    chain.children.push_back(std::move(first).value());
    while (at_keyword(kw)) {
      next();
      auto more = k == node::kind::or_ ? parse_and(depth) : parse_not(depth);
      if (!more) return more;
      chain.children.push_back(std::move(more).value());
    }
    return chain;
  }

  result<node> parse_not(int depth) {
    if (!at_keyword("not")) return parse_primary(depth);
    const token& t = next();
    if (depth + 1 > max_nesting_depth) return too_deep(t);
    auto operand = parse_not(depth + 1);
    if (!operand) return operand;
    node n;
    n.k = node::kind::not_;
    n.children.push_back(std::move(operand).value());
    return n;
  }

  result<node> parse_primary(int depth) {
    const token& t = peek();
    if (t.kind == token_kind::lparen) {
      next();
      if (depth + 1 > max_nesting_depth) return too_deep(t);
      auto inner = parse_or(depth + 1);
      if (!inner) return inner;
      if (peek().kind != token_kind::rparen) {
        return fail(peek(), "expected ')' to close '(' at column " +
                                std::to_string(column_of(_text, t.offset)) + ", found " + describe(peek()));
      }
      next();
      return inner;
    }
    if (at_keyword("exists")) {
      next();
      if (peek().kind != token_kind::lparen) return fail(peek(), "expected '(' after 'exists'");
      next();
      node n;
      n.k = node::kind::exists;
      auto path = parse_path();
      if (!path) return std::move(path).err();
      n.field = std::move(path).value();
      if (peek().kind != token_kind::rparen) return fail(peek(), "expected ')' after the path in 'exists('");
      next();
      return n;
    }
    auto path = parse_path();
    if (!path) return std::move(path).err();
    node n;
    n.field = std::move(path).value();
    if (at_keyword("in")) {
      next();
      n.k = node::kind::in;
      if (peek().kind != token_kind::lbracket) return fail(peek(), "expected '[' after 'in'");
      next();
      if (peek().kind == token_kind::rbracket) {
        next();
        return n;
      }
      while (true) {
        if (!starts_literal(peek())) return fail(peek(), "expected a literal in the list");
        auto lit = parse_literal();
        if (!lit) return std::move(lit).err();
        n.literals.push_back(std::move(lit).value());
        const token& sep = next();
        if (sep.kind == token_kind::rbracket) return n;
        if (sep.kind != token_kind::comma)
          return fail(sep, "expected ',' or ']' in the list, found " + describe(sep));
      }
    }
    if (peek().kind != token_kind::op) {
      return fail(peek(),
                  "expected an operator or 'in' after '" + n.field.text + "', found " + describe(peek()));
    }
    const token& op = next();
    n.k = node::kind::compare;
    n.op = op_of(op.text);
    if (!starts_literal(peek())) return fail(peek(), "expected a literal after '" + op.text + "'");
    auto lit = parse_literal();
    if (!lit) return std::move(lit).err();
    n.literals.push_back(std::move(lit).value());
    return n;
  }

  result<field_path> parse_path() {
    field_path p;
    while (true) {
      const token& t = peek();
      if (t.kind != token_kind::ident || is_keyword(t.text)) {
        return fail(t, p.segments.empty()
                           ? "expected a field path, 'not', 'exists' or '(', found " + describe(t)
                           : "expected a field name after '.', found " + describe(t));
      }
      next();
      if (!p.text.empty()) p.text.push_back('.');
      p.text += t.text;
      p.segments.push_back(t.text);
      if (peek().kind != token_kind::dot) return p;
      next();
    }
  }

  static bool starts_literal(const token& t) {
    return t.kind == token_kind::integer || t.kind == token_kind::floating || t.kind == token_kind::string ||
           (t.kind == token_kind::ident && (t.text == "true" || t.text == "false" || t.text == "null"));
  }

  result<literal> parse_literal() {
    const token& t = next();
    switch (t.kind) {
      case token_kind::string:
        return literal{t.text};
      case token_kind::integer: {
        std::int64_t v = 0;
        auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc{} || ptr != t.text.data() + t.text.size()) return fail(t, "integer out of range");
        return literal{v};
      }
      case token_kind::floating: {
        double v = 0;
        auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc{} || ptr != t.text.data() + t.text.size() || !std::isfinite(v)) {
          return fail(t, "number out of range");
        }
        return literal{v};
      }
      default:
        if (t.text == "true") return literal{true};
        if (t.text == "false") return literal{false};
        return literal{nullptr};
    }
  }

  error too_deep(const token& t) const {
    return fail(t, "nesting deeper than " + std::to_string(max_nesting_depth) + " levels");
  }

  std::string_view _text;
  std::vector<token> _tokens;
  std::size_t _pos = 0;
};

}  // namespace

result<plan> parse_filter(std::string_view text) {
  if (text.size() > max_filter_bytes) {
    return query_error(text, max_filter_bytes,
                       "filter longer than " + std::to_string(max_filter_bytes) + " bytes");
  }
  auto tokens = lex(text);
  if (!tokens) return std::move(tokens).err();
  return parser(text, std::move(tokens).value()).run();
}

}  // namespace esflow::query
