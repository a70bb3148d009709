#pragma once
// A decide/apply program (one Lua file per aggregate type) and the shared,
// thread-safe cache that loads programs from disk and swaps them on reload.
//
// Thread model:
//   - `program` is immutable after construction; share it freely across threads
//     as `program_ptr` (shared_ptr<const program>).
//   - `program_cache` is thread-safe (one mutex; lookups are short).
//   - Compiling a program into a Lua VM happens lazily in each `sandbox`
//     (runtime/sandbox.h), which is per worker.
//
// NOTE: reload() never invalidates a program_ptr already handed out: in-flight
// work keeps running the version it started with; new lookups get the new one.
#include "common/result.h"
#include "common/sha256.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace esflow::runtime {

// SHA-256 of content (common/sha256.h): a program's hash() is what
// `sha256sum <file>` prints, so an operator can check /info against the file.
using content_hash = sha256_digest;
using content_hash_hasher = sha256_digest_hasher;

class program {
 public:
  // name: the aggregate type (or the file stem); path: where the source came
  // from (used as the Lua chunk name, so errors read "path:line: ...").
  program(std::string name, std::string path, std::string source);

  const std::string& name() const noexcept { return _name; }
  const std::string& path() const noexcept { return _path; }
  const std::string& source() const noexcept { return _source; }
  // SHA-256 of the source bytes alone (the file's bytes for load_program).
  const content_hash& hash() const noexcept { return _hash; }
  // SHA-256 of (path, source), length-prefixed: what a sandbox caches compiled code under, so two
  // files with equal text still report their own path in errors.
  const content_hash& compile_key() const noexcept { return _key; }

 private:
  std::string _name;
  std::string _path;
  std::string _source;
  content_hash _hash;
  content_hash _key;
};

using program_ptr = std::shared_ptr<const program>;

// Checks that `source` is a Lua 5.4 text chunk that compiles (syntax only; the
// program is not run). Binary chunks are refused. Error: program_error with
// "path:line: message".
status check_syntax(std::string_view source, std::string_view path);

// Reads and syntax-checks a program file. name defaults to the file stem.
// Errors: invalid_config (unreadable file), program_error (syntax).
result<program_ptr> load_program(const std::filesystem::path& path, std::string name = {});

class program_cache {
 public:
  // The current program for `path`, loading it on first use.
  result<program_ptr> get(const std::filesystem::path& path);
  // Re-reads `path`. Unchanged content returns the current program (same
  // pointer); new content is syntax-checked and becomes current. A file that
  // fails to load or compile leaves the current program in place and returns the error.
  result<program_ptr> reload(const std::filesystem::path& path);
  // Registers in-memory source under `path` (tests, embedded programs), with
  // the same swap semantics as reload().
  result<program_ptr> put(std::string name, std::string path, std::string source);

  std::size_t size() const;

 private:
  result<program_ptr> install(program_ptr fresh);

  mutable std::mutex _mu;
  std::unordered_map<std::string, program_ptr> _by_path;
  // Identical content under one path shares one program object.
  std::unordered_map<content_hash, std::weak_ptr<const program>, content_hash_hasher> _by_key;
};

}  // namespace esflow::runtime
