#include "runtime/program.h"

#include <lua.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

namespace esflow::runtime {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int r) noexcept { return (x << r) | (x >> (64 - r)); }

constexpr std::uint64_t avalanche(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

content_hash content_hash::of(std::string_view bytes) noexcept {
  // Two 64-bit lanes over 8-byte words, each with its own multiplier and
  // rotation, finished with an avalanche step. Not cryptographic: it names
  // program versions, it does not defend against chosen collisions.
  std::uint64_t a = 0x243f6a8885a308d3ULL ^ bytes.size();
  std::uint64_t b = 0x13198a2e03707344ULL + (bytes.size() * 0x9e3779b97f4a7c15ULL);
  const char* p = bytes.data();
  std::size_t n = bytes.size();
  auto mix = [&](std::uint64_t w) {
    a = rotl(a ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL;
    b = rotl(b + (w ^ 0x52dce729ULL), 27) * 0x9e3779b97f4a7c15ULL + a;
  };
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    mix(w);
    p += 8;
    n -= 8;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  mix(tail ^ (static_cast<std::uint64_t>(n) << 56));
  return content_hash{avalanche(a ^ rotl(b, 17)), avalanche(b + a)};
}

std::string content_hash::to_hex() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = digits[(hi >> (4 * i)) & 0xf];
    out[31 - i] = digits[(lo >> (4 * i)) & 0xf];
  }
  return out;
}

program::program(std::string name, std::string path, std::string source)
    : _name(std::move(name)), _path(std::move(path)), _source(std::move(source)) {
  _hash = content_hash::of(_source);
  std::string keyed;
  keyed.reserve(_path.size() + 1 + _source.size());
  keyed.append(_path).push_back('\0');
  keyed.append(_source);
  _key = content_hash::of(keyed);
}

status check_syntax(std::string_view source, std::string_view path) {
  lua_State* L = luaL_newstate();
  if (L == nullptr) return error::make(errc::internal, "cannot create a Lua state");
  std::string chunkname = "@" + std::string(path);
  int rc = luaL_loadbufferx(L, source.data(), source.size(), chunkname.c_str(), "t");
  status out;
  if (rc != LUA_OK) {
    const char* msg = lua_tostring(L, -1);
    out = error::make(errc::program_error, msg != nullptr ? msg : "cannot compile program",
                      "program=" + std::string(path));
  }
  lua_close(L);
  return out;
}

result<program_ptr> load_program(const std::filesystem::path& path, std::string name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error::make(errc::invalid_config, "cannot open program file", "path=" + path.string());
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return error::make(errc::invalid_config, "cannot read program file", "path=" + path.string());
  if (name.empty()) name = path.stem().string();
  std::string source = std::move(buf).str();
  if (auto ok = check_syntax(source, path.string()); !ok) return std::move(ok).err();
  return std::make_shared<const program>(std::move(name), path.string(), std::move(source));
}

result<program_ptr> program_cache::get(const std::filesystem::path& path) {
  {
    std::lock_guard lock(_mu);
    if (auto it = _by_path.find(path.string()); it != _by_path.end()) return it->second;
  }
  auto loaded = load_program(path);
  if (!loaded) return std::move(loaded).err();
  return install(std::move(loaded).value());
}

result<program_ptr> program_cache::reload(const std::filesystem::path& path) {
  auto loaded = load_program(path);
  if (!loaded) return std::move(loaded).err();
  return install(std::move(loaded).value());
}

result<program_ptr> program_cache::put(std::string name, std::string path, std::string source) {
  if (auto ok = check_syntax(source, path); !ok) return std::move(ok).err();
  return install(std::make_shared<const program>(std::move(name), std::move(path), std::move(source)));
}

result<program_ptr> program_cache::install(program_ptr fresh) {
  std::lock_guard lock(_mu);
  auto& slot = _by_path[fresh->path()];
  if (slot && slot->compile_key() == fresh->compile_key()) return slot;  // unchanged
  auto& known = _by_key[fresh->compile_key()];
  if (auto alive = known.lock()) {
    slot = std::move(alive);  // a version seen before (e.g. a reload back): reuse it
  } else {
    known = fresh;
    slot = std::move(fresh);
  }
  // Forget versions nobody holds any more.
  std::erase_if(_by_key, [](const auto& kv) { return kv.second.expired(); });
  return slot;
}

std::size_t program_cache::size() const {
  std::lock_guard lock(_mu);
  return _by_path.size();
}

}  // namespace esflow::runtime
