#pragma once
// JSON encoding of the docs/contract.md envelopes ("JSON envelopes").
//
// json_writer appends to a caller-owned std::string (reuse it across messages to
// avoid allocations). It tracks commas itself; it does not check that keys and
// values alternate properly: callers are the encoders below and tests.
//
// String policy (write_string / key):
//  - `"` and `\` are escaped; \b \f \n \r \t use their short forms; every other
//    byte < 0x20 is written as \u00XX. DEL (0x7f) and non-ASCII pass through.
//  - Valid UTF-8 is copied as is (no \u escapes for non-ASCII).
//  - Invalid UTF-8 (stray continuation bytes, truncated or overlong sequences,
//    surrogates, code points above U+10FFFF) is replaced by U+FFFD: a byte that
//    does not start a complete valid sequence becomes one U+FFFD and decoding
//    resumes at the next byte, so the output is always valid UTF-8 and JSON.
//
// Raw JSON (payload, metadata, state) is inserted verbatim: it was validated
// when it was decoded or produced by a program. An empty raw text is written as
// `{}` so the output stays well-formed.
#include "common/error.h"
#include "schemas/envelopes.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace esflow::schemas {

class json_writer {
 public:
  explicit json_writer(std::string& out) noexcept : _out(out) {}

  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  // Writes `"name":` (with a leading comma when needed).
  json_writer& key(std::string_view name);
  json_writer& value(std::string_view s);
  json_writer& value(const char* s) { return value(std::string_view(s)); }
  json_writer& value(std::uint64_t v);
  json_writer& value(std::int64_t v);
  json_writer& value(bool v);
  json_writer& null();
  // Already-encoded JSON (an object, array, number...).
  json_writer& raw(std::string_view json);

  std::string& out() noexcept { return _out; }

 private:
  void before_value();

  std::string& _out;
  // Bit i set: the container at depth i already holds an element.
  std::uint64_t _has_elements = 0;
  int _depth = 0;
  bool _after_key = false;
};

// Appends `s` as a quoted JSON string (policy above).
void append_json_string(std::string& out, std::string_view s);

// Envelope encoders: append_* append to `out`; encode_* return a new string.
// Field order follows docs/contract.md. command: command_id and aggregate_id are
// omitted when empty (the decoder treats an empty id as invalid);
// trace context is a transport concern (headers) and is not encoded.
void append_command(std::string& out, const command& c);
void append_event(std::string& out, const event& e);
void append_commit(std::string& out, const commit& c);
// accepted: {"status":"accepted","aggregate_id",...,"version","duplicate","events"}
// rejected: {"status":"rejected","code","message","retryable"}
void append_command_result(std::string& out, const command_result& r);
void append_snapshot(std::string& out, const snapshot& s);

std::string encode_command(const command& c);
std::string encode_event(const event& e);
std::string encode_commit(const commit& c);
std::string encode_command_result(const command_result& r);
std::string encode_snapshot(const snapshot& s);

// The rejected CommandResult for an error: its wire code (code_text), its
// message (the code when empty: docs/contract.md 10.4 "Answers" wants a non-empty message) and
// retryable(code) (true only for version_conflict and unavailable).
command_result make_rejection(const error& e);

}  // namespace esflow::schemas
