#pragma once
// Internal to esflow_runtime: JSON <-> Lua value mapping (see runtime/README.md).
//
//   JSON            Lua
//   object          table (string keys), no metatable
//   array           table 1..n with the shared array metatable (so [] stays [])
//   integer         integer (int64; a larger integer is refused)
//   other number    float (encoded back with a '.' or exponent so it stays a float)
//   string          string (any bytes on the Lua side; must be UTF-8 to encode)
//   true/false      boolean
//   null            the `null` sentinel (light userdata NULL), never nil
//
// NOTE: push_json raises Lua errors (allocation): call it only in protected mode
// and from frames that own no C++ objects with destructors. json_writer never
// raises a Lua error and may be used anywhere.
#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct lua_State;

namespace esflow::runtime::detail {

// Registry key (its address) of the array metatable.
extern const char k_array_mt_key;

// Pushes the Lua value of `element`. array_mt is the absolute stack index of
// the array metatable. On a value Lua cannot hold, stores a static message in
// *bad and pushes nil.
void push_json(lua_State* L, simdjson::dom::element element, int array_mt, const char** bad);

// Lua -> JSON. Object keys are sorted bytewise so equal tables give equal text.
class json_writer {
 public:
  // array_mt: absolute stack index of the array metatable.
  json_writer(lua_State* L, int array_mt) : _L(L), _array_mt(array_mt) {}

  // Appends the value at stack index idx to out. On failure returns false and
  // error() says what and where ("cannot encode a function as JSON at $.a[2]").
  bool write(int idx, std::string& out);
  const std::string& error() const noexcept { return _error; }
  // Where the array metatable is (an absolute or pseudo stack index).
  void set_array_mt(int idx) noexcept { _array_mt = idx; }

 private:
  struct entry {
    std::string_view key;
    long long index;
    int slot;
  };
  bool value(int idx, std::string& out, int depth);
  bool table(int idx, std::string& out, int depth);
  bool fail(std::string msg);
  void prefix_path(std::string segment);

  lua_State* _L;
  int _array_mt;
  std::vector<entry> _scratch;  // shared by nested tables, used like a stack
  std::string _error;
  std::vector<std::string> _path;  // filled innermost-first while unwinding an error
};

void append_json_string(std::string& out, std::string_view s);

}  // namespace esflow::runtime::detail
