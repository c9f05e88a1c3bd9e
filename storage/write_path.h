#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "storage/backend.h"
#include "storage/clock.h"
#include "storage/store_options.h"

namespace triage::storage {

// Whether the store can take writes. Unavailable from the first failed write or background
// error (ENOSPC, EIO) until a resume succeeds; writes are refused at once meanwhile.
struct StorageHealth {
  bool available = true;
  std::string error;              // the first error of the episode (for logs, never for clients)
  absl::Time since;               // when it became unavailable
  int64_t errors = 0;             // failed writes and background errors since open
  int64_t recoveries = 0;         // episodes ended by a successful resume
};

// The ingest write path: requests wait in a bounded queue for one writer thread, which takes
// up to `max_group_requests` of them at a time and stores them with one Backend::Commit (group
// commit: one durable write for the group). It also keeps the store's health: a failed write
// makes it unavailable, and the writer then tries Backend::Resume every `recovery_interval`.
//
// Thread-safety: every method may be called from any thread.
class WritePath {
 public:
  using Done = absl::AnyInvocable<void(IngestResult)>;
  // The entries a stored group queued (their views valid during the call), on the writer
  // thread: `index` runs before the requests' callbacks (a caller told "stored" can lease
  // them), `announce` after them (the answers go out before the wake-ups).
  using Queued = std::function<void(const std::vector<QueuedEntry>& queued)>;

  WritePath(Backend& backend, const StoreOptions& options, const Clock& clock, Queued index, Queued announce);
  ~WritePath();  // Stop()

  void Start();  // the writer thread
  // Refuses new requests, commits those accepted, and joins the writer. Idempotent.
  void Stop();

  // Queues a request for the writer; `done` runs once, on the writer thread, after the group's
  // durable write or its failure. A request refused at once (closing, unavailable, too many
  // waiting) gets `done` before Enqueue returns.
  void Enqueue(IngestRequest request, Done done);

  // A write failed (here or anywhere else in the store): the store becomes unavailable when it
  // is a storage error (Unavailable); other codes are refusals of one call.
  void Failed(const absl::Status& status);
  StorageHealth Health();
  bool Available() const { return available_.load(); }

 private:
  void Loop();
  void CommitGroup();
  bool TryResume();

  Backend& backend_;
  const StoreOptions& options_;
  const Clock& clock_;
  const Queued index_;
  const Queued announce_;
  std::atomic<bool> available_{true};  // mirrors health_.available, read without the lock

  std::mutex mu_;  // guards pending_, stopping_
  std::condition_variable cv_;
  std::deque<std::pair<IngestRequest, Done>> pending_;
  bool stopping_ = false;

  std::mutex health_mu_;  // guards health_ (failures come from any thread)
  StorageHealth health_;

  // The writer thread's group, reused.
  std::vector<IngestRequest> requests_;
  std::vector<Done> dones_;
  std::vector<IngestResult> results_;
  std::vector<QueuedEntry> queued_;

  std::thread writer_;
};

}  // namespace triage::storage
