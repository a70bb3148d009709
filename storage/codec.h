#pragma once
// Compact binary values of the storage module (internal; not a wire format).
// Integers are LEB128 varints, strings a varint length then the bytes. Every
// value starts with a format byte so the layout can evolve.
#include <cstdint>
#include <string>
#include <string_view>

namespace esflow::storage::codec {

class writer {
 public:
  explicit writer(std::string& out) : _out(out) {}
  void u8(std::uint8_t v) { _out.push_back(static_cast<char>(v)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      _out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    _out.push_back(static_cast<char>(v));
  }
  void str(std::string_view s) {
    varint(s.size());
    _out.append(s);
  }
  // Fixed-size bytes (no length: the reader knows it).
  void raw(std::string_view s) { _out.append(s); }

 private:
  std::string& _out;
};

// Reads never run past the end; a truncated or corrupt value sets !ok().
class reader {
 public:
  explicit reader(std::string_view in) : _in(in) {}
  bool ok() const noexcept { return _ok; }
  bool done() const noexcept { return _pos == _in.size(); }

  std::uint8_t u8() {
    if (_pos >= _in.size()) return fail();
    return static_cast<std::uint8_t>(_in[_pos++]);
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (_pos >= _in.size()) return fail();
      auto byte = static_cast<unsigned char>(_in[_pos++]);
      v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return fail();
  }
  std::string_view str() { return raw(varint()); }
  // n bytes; empty (and !ok()) when fewer are left.
  std::string_view raw(std::uint64_t n) {
    if (!_ok || _in.size() - _pos < n) {
      fail();
      return {};
    }
    auto s = _in.substr(_pos, n);
    _pos += n;
    return s;
  }

 private:
  std::uint8_t fail() {
    _ok = false;
    _pos = _in.size();
    return 0;
  }
  std::string_view _in;
  std::size_t _pos = 0;
  bool _ok = true;
};

}  // namespace esflow::storage::codec
