#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/clock.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace triage::storage {

// What a store is opened with: the limits and windows of every backend, and where the RocksDB
// backend keeps its files.
struct StoreOptions {
  std::string path;  // RocksDB directory, created if missing
  // A message seen again within this window is a duplicate. Older records are dropped by
  // compaction (no scan), and a record found older than the window no longer counts.
  absl::Duration dedup_window = absl::Hours(24 * 8);
  size_t max_queued_entries = 1'000'000;  // beyond this, Submit answers ResourceExhausted
  size_t max_pending_requests = 10'000;   // requests waiting for the group-commit writer
  size_t max_group_requests = 1'000;      // requests sharing one WAL sync at most
  // An entry gains one level of priority for each step it has waited, so none starves.
  absl::Duration aging_step = absl::Minutes(30);
  // How long a helpdesk ticket created here can be traced back to its message (TicketOrigin),
  // for the labels agents give it later.
  absl::Duration ticket_origin_window = absl::Hours(24 * 90);
  // How long a request the parser could not read is kept for a replay (Quarantined).
  absl::Duration quarantine_retention = absl::Hours(24 * 14);
  rocksdb::Env* env = nullptr;  // for fault-injection tests; null means the default Env
  // What "now" is for the windows of remote tickets and ticket origins, the recorded times of
  // acknowledgements and the health episode; null means the wall clock (tests move their own).
  const Clock* clock = nullptr;
  // The backend's own log lines (severity 0 debug .. 4 fatal, 5 header): RocksDB's, which never
  // go to a file on the data disk (a full disk must not make RocksDB fail while it reports the
  // failure), and JetStream's queue ownership. None: dropped.
  std::function<void(int severity, absl::string_view line)> log;
  // While storage is unavailable (a failed write, a background error such as a full disk),
  // how often the store tries to resume: RocksDB's Resume, then a synced probe write.
  absl::Duration recovery_interval = absl::Seconds(1);

  absl::Status Validate() const;
};

}  // namespace triage::storage
