#include "storage/write_path.h"

#include <pthread.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

namespace triage::storage {

WritePath::WritePath(Backend& backend, const StoreOptions& options, const Clock& clock, Queued index,
                     Queued announce)
    : backend_(backend), options_(options), clock_(clock), index_(std::move(index)), announce_(std::move(announce)) {}

WritePath::~WritePath() { Stop(); }

void WritePath::Start() {
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-writer");
    Loop();
  });
}

void WritePath::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void WritePath::Enqueue(IngestRequest request, Done done) {
  absl::Status refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the store is closing");
    } else if (!available_.load()) {
      refused = absl::UnavailableError("storage unavailable (resuming)");
    } else if (pending_.size() >= options_.max_pending_requests) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat(options_.max_pending_requests, " requests already wait for storage"));
    } else {
      pending_.emplace_back(std::move(request), std::move(done));
    }
  }
  if (!refused.ok()) {
    done(IngestResult{refused});
    return;
  }
  cv_.notify_one();
}

void WritePath::Failed(const absl::Status& status) {
  // Only storage errors make it unavailable; a refused request (closing, full queues) does not.
  if (status.code() != absl::StatusCode::kUnavailable) return;
  {
    std::lock_guard lock(health_mu_);
    ++health_.errors;
    if (!health_.available) return;
    health_.available = false;
    health_.error = std::string(status.message());
    health_.since = clock_.Now();
    available_.store(false);
  }
  if (options_.log) options_.log(3, absl::StrCat("storage unavailable: ", status.message()));
  cv_.notify_all();
}

bool WritePath::TryResume() {
  if (const absl::Status resumed = backend_.Resume(); !resumed.ok()) {
    if (options_.log) options_.log(0, absl::StrCat("resume: ", resumed.message()));
    return false;
  }
  absl::Duration down;
  {
    std::lock_guard lock(health_mu_);
    health_.available = true;
    ++health_.recoveries;
    down = clock_.Now() - health_.since;
    available_.store(true);
  }
  if (options_.log) {
    options_.log(2, absl::StrCat("storage available again after ",
                                 absl::FormatDuration(absl::Trunc(down, absl::Seconds(1)))));
  }
  cv_.notify_all();
  return true;
}

StorageHealth WritePath::Health() {
  std::lock_guard lock(health_mu_);
  return health_;
}

void WritePath::Loop() {
  for (;;) {
    if (!available_.load()) {
      // Unavailable: try to resume now and then; requests are refused at once meanwhile.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::microseconds(absl::ToInt64Microseconds(options_.recovery_interval)),
                   [&] { return stopping_; });
      if (stopping_ && pending_.empty()) return;
      const bool stopping = stopping_;
      lock.unlock();
      if (!stopping) TryResume();
    }
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || !available_.load(); });
      if (pending_.empty() && !stopping_) continue;  // went unavailable: resume first
      if (pending_.empty()) return;  // stopping, and everything accepted is committed
      while (!pending_.empty() && requests_.size() < options_.max_group_requests) {
        requests_.push_back(std::move(pending_.front().first));
        dones_.push_back(std::move(pending_.front().second));
        pending_.pop_front();
      }
    }
    CommitGroup();
  }
}

void WritePath::CommitGroup() {
  results_.assign(requests_.size(), IngestResult{});
  queued_.clear();
  const absl::Status written = backend_.Commit(absl::MakeSpan(requests_), absl::MakeSpan(results_), queued_);
  // A failed write was reported by the backend (Failed) already.
  if (written.ok()) index_(queued_);
  for (size_t i = 0; i < requests_.size(); ++i) {
    if (!written.ok() && results_[i].status.ok()) results_[i] = IngestResult{written};
    dones_[i](std::move(results_[i]));
  }
  if (written.ok() && !queued_.empty()) announce_(queued_);
  requests_.clear();
  dones_.clear();
}

}  // namespace triage::storage
