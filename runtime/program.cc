#include "runtime/program.h"

#include <lua.hpp>

#include <fstream>
#include <sstream>

namespace esflow::runtime {
program::program(std::string name, std::string path, std::string source)
    : _name(std::move(name)), _path(std::move(path)), _source(std::move(source)) {
  _hash = content_hash::of(_source);
  sha256_builder key;
  _key = key.field(_path).field(_source).finish();
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
