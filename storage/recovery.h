#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "storage/backend.h"
#include "storage/queue_index.h"

namespace triage::storage {

// An entry a backend reports, stored by a commit or found by a replay, into the index.
void AddToIndex(QueueIndex& index, const QueuedEntry& queued);

// Recovery at start: rebuilds `index` (empty) from every entry the backend holds queued. Leases
// live in memory only, so every entry is in its queue again, ready or in back-off by its due
// time at `now`. Not thread-safe: before the store takes traffic.
absl::Status RebuildIndex(Backend& backend, QueueIndex& index, absl::Time now);

}  // namespace triage::storage
