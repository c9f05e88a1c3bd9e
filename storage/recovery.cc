#include "storage/recovery.h"

#include <string>

namespace triage::storage {

void AddToIndex(QueueIndex& index, const QueuedEntry& queued) {
  IndexEntry entry = queued.entry;
  entry.team = index.TeamId(queued.team);
  index.Add(std::string(queued.destination), queued.seq, entry);
}

absl::Status RebuildIndex(Backend& backend, QueueIndex& index, absl::Time now) {
  return backend.Replay(now, [&index](const QueuedEntry& queued) { AddToIndex(index, queued); });
}

}  // namespace triage::storage
