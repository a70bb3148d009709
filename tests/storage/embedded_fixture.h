#pragma once
// A RocksDB in a temp dir with an embedded event log on it.
#include "storage/db.h"
#include "storage/embedded_event_log.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

#include <memory>

namespace esflow::storage::testing {

class embedded_env {
 public:
  explicit embedded_env(durability mode, embedded_options options = {}) : _mode(mode), _options(options) {
    open();
  }
  ~embedded_env() { close(); }

  event_log& log() { return *_log; }
  embedded_event_log& embedded() { return *_log; }
  db& database() { return *_db; }

  void open() {
    db_options o;
    o.path = _dir.str();
    o.mode = _mode;
    auto d = db::open(o);
    if (!d.ok()) FAIL() << d.err().to_string();
    _db = std::move(d).value();
    auto l = embedded_event_log::open(*_db, _options);
    if (!l.ok()) FAIL() << l.err().to_string();
    _log = std::move(l).value();
  }
  void close() {
    if (_log) {
      EXPECT_TRUE(_log->close().ok());
    }
    _log.reset();
    if (_db) {
      EXPECT_TRUE(_db->close().ok());
    }
    _db.reset();
  }
  void reopen() {
    close();
    open();
  }

 private:
  temp_dir _dir;
  durability _mode;
  embedded_options _options;
  std::unique_ptr<db> _db;
  std::unique_ptr<embedded_event_log> _log;
};

}  // namespace esflow::storage::testing
