#include "storage/store.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/recovery.h"
#include "storage/rocksdb/rocksdb_backend.h"

namespace triage::storage {

std::string ThreadKey(absl::string_view source, absl::string_view conversation_id,
                      absl::string_view author_id) {
  return JoinKey(MessageKey(source, conversation_id), author_id);
}

absl::Status StoreOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("storage path is empty");
  if (ticket_origin_window < absl::Minutes(1)) {
    return absl::InvalidArgumentError("the ticket origin window must be at least 1m");
  }
  if (dedup_window < absl::Minutes(1)) {
    return absl::InvalidArgumentError("dedup window must be at least 1m");
  }
  if (max_queued_entries == 0 || max_pending_requests == 0 || max_group_requests == 0) {
    return absl::InvalidArgumentError("storage limits must be positive");
  }
  if (aging_step <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("aging step must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options, absl::Time now) {
  if (auto s = options.Validate(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<RocksDbBackend>> backend = RocksDbBackend::Open(options);
  if (!backend.ok()) return backend.status();
  return Open(*std::move(backend), options, now);
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(std::unique_ptr<Backend> backend, const StoreOptions& options,
                                                   absl::Time now) {
  if (auto s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<Store> store(new Store(std::move(backend), options));
  // A shared backend feeds the owned queues instead (the first ones before StartFeed returns).
  if (!store->fed_) {
    if (auto s = RebuildIndex(*store->backend_, store->index_, now); !s.ok()) return s;
  }
  store->backend_->SetErrorHandler([s = store.get()](const absl::Status& error) { s->write_path_.Failed(error); });
  if (store->fed_) {
    if (auto s = store->backend_->StartFeed(*store); !s.ok()) return s;
  }
  store->write_path_.Start();
  return store;
}

Store::Store(std::unique_ptr<Backend> backend, const StoreOptions& options)
    : options_(options),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()),
      backend_(std::move(backend)),
      index_(options_.aging_step),
      fed_(backend_->Fed()),
      write_path_(
          *backend_, options_, clock_,
          [this](const std::vector<QueuedEntry>& queued) {
            std::unique_lock lock(mu_);
            if (fed_) {
              AwaitFed(lock, queued);
              return;
            }
            for (const QueuedEntry& q : queued) AddToIndex(index_, q);
          },
          [this](const std::vector<QueuedEntry>& queued) {
            if (fed_) return;  // Entry announced them
            // One call per destination, with how many entries it gained (entries of one
            // destination are rarely apart in a group: a short linear search).
            std::vector<std::pair<absl::string_view, size_t>> ready;
            for (const QueuedEntry& q : queued) {
              auto it = std::find_if(ready.begin(), ready.end(), [&q](const auto& d) { return d.first == q.destination; });
              if (it == ready.end()) {
                ready.emplace_back(q.destination, 1);
              } else {
                ++it->second;
              }
            }
            for (const auto& [destination, entries] : ready) Announce(std::string(destination), entries);
          }) {}

Store::~Store() {
  write_path_.Stop();
  if (fed_) backend_->StopFeed();
  backend_->SetErrorHandler(nullptr);
}

// How long a fed store's writer waits for the feed to bring back what it stored: about a push
// from the servers normally; past it the answer goes out and the entry is indexed when it comes.
constexpr auto kFeedWait = std::chrono::seconds(2);

void Store::AwaitFed(std::unique_lock<std::mutex>& lock, absl::Span<const QueuedEntry> queued) {
  const auto deadline = std::chrono::steady_clock::now() + kFeedWait;
  for (const QueuedEntry& q : queued) {
    const bool fed = fed_cv_.wait_until(lock, deadline, [&] {
      const auto it = owned_.find(q.destination);
      return it == owned_.end() || !it->second.following || it->second.fed_seq >= q.seq ||
             it->second.fed_seq == it->second.stalled_at;
    });
    if (!fed) {
      // The feed brought nothing in time (a follower waiting for a new consumer): later writes
      // do not wait for it again until it brings something.
      if (const auto it = owned_.find(q.destination); it != owned_.end()) it->second.stalled_at = it->second.fed_seq;
      return;
    }
  }
}

void Store::Acquired(const std::string& destination, uint64_t generation) {
  {
    std::lock_guard lock(mu_);
    index_.Drop(destination);
    owned_[destination] = Owned{.generation = generation};
  }
  fed_cv_.notify_all();
}

void Store::Renewed(const std::string& destination, uint64_t generation, absl::Time until) {
  size_t resumed = 0;
  {
    std::lock_guard lock(mu_);
    const auto it = owned_.find(destination);
    if (it == owned_.end() || it->second.generation != generation) return;
    const bool was = Leasable(destination) != nullptr;
    it->second.leasable_until = until;
    // Out of a fence: the workers that found nothing leasable wait for this.
    if (!was && Leasable(destination) != nullptr) resumed = static_cast<size_t>(index_.size());  // at most: wakes every idle worker
  }
  if (resumed > 0) Announce(destination, resumed);
}

void Store::Following(const std::string& destination, uint64_t generation) {
  {
    std::lock_guard lock(mu_);
    const auto it = owned_.find(destination);
    if (it == owned_.end() || it->second.generation != generation) return;
    it->second.following = true;
  }
  fed_cv_.notify_all();
}

void Store::Entry(uint64_t generation, const QueuedEntry& entry) {
  {
    std::lock_guard lock(mu_);
    const auto it = owned_.find(entry.destination);
    // Another ownership's, or one fed already (a consumer that started again).
    if (it == owned_.end() || it->second.generation != generation || entry.seq <= it->second.fed_seq) return;
    it->second.fed_seq = entry.seq;
    AddToIndex(index_, entry);
  }
  fed_cv_.notify_all();
  Announce(std::string(entry.destination), 1);
}

bool Store::Release(const std::string& destination) {
  {
    std::lock_guard lock(mu_);
    const auto it = owned_.find(destination);
    if (it != owned_.end()) {
      it->second.releasing = true;
      if (index_.LeasedCount(destination) > 0) return false;
      owned_.erase(it);
    }
    index_.Drop(destination);
  }
  fed_cv_.notify_all();
  return true;
}

void Store::Lost(const std::string& destination) {
  {
    std::lock_guard lock(mu_);
    owned_.erase(destination);
    index_.Drop(destination);
  }
  fed_cv_.notify_all();
}

bool Store::Current(const Lease& lease) const {
  if (!fed_) return true;
  const auto it = owned_.find(lease.destination);
  return it != owned_.end() && it->second.generation == lease.generation;
}

void Store::SetReadyCallback(ReadyCallback callback) {
  std::lock_guard lock(mu_);
  ready_callback_ = std::move(callback);
}

void Store::Announce(const std::string& destination, size_t entries) {
  ReadyCallback callback;
  {
    std::lock_guard lock(mu_);
    callback = ready_callback_;
  }
  if (callback) callback(destination, entries);
}

void Store::Submit(std::vector<NewMessage> messages, absl::Time received_at,
                   absl::AnyInvocable<void(IngestResult)> done, std::optional<QuarantineRecord> quarantine) {
  int64_t queued;
  {
    std::lock_guard lock(mu_);
    queued = index_.size();
  }
  if (queued >= static_cast<int64_t>(options_.max_queued_entries)) {
    done(IngestResult{absl::ResourceExhaustedError(
        absl::StrCat("the queues hold ", queued, " entries, the configured maximum"))});
    return;
  }
  write_path_.Enqueue(IngestRequest{std::move(messages), received_at, std::move(quarantine)}, std::move(done));
}

std::optional<Lease> Store::LeaseNext(const std::string& destination, absl::Time now, bool probe) {
  std::vector<Lease> leased = Leases(destination, now, 1, probe);
  if (leased.empty()) return std::nullopt;
  return std::move(leased.front());
}

std::vector<Lease> Store::LeaseBatch(const std::string& destination, absl::Time now, size_t limit) {
  return Leases(destination, now, limit, false);
}

std::vector<Lease> Store::Leases(const std::string& destination, absl::Time now, size_t limit, bool probe) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  std::vector<QueueIndex::Leased> leased;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (fed_) {
      const Owned* owned = Leasable(destination);
      if (owned == nullptr) return {};
      generation = owned->generation;
    }
    while (leased.size() < limit) {
      std::optional<QueueIndex::Leased> next = index_.Lease(destination, now_ms, probe && leased.empty());
      if (!next) break;
      leased.push_back(*next);
    }
  }
  std::vector<Lease> leases;
  leases.reserve(leased.size());
  for (const QueueIndex::Leased& one : leased) {
    Lease lease{destination, one.seq, {}, one.early, generation};
    absl::StatusOr<std::optional<QueueEntry>> entry = backend_->ReadEntry(destination, one.entry.level, one.seq);
    if (!entry.ok() && entry.status().code() != absl::StatusCode::kDataLoss) {
      // Unreadable for now (an I/O error): due again after a while, nothing lost.
      {
        std::lock_guard lock(mu_);
        if (Current(lease)) {
          (void)index_.Delay(destination, one.seq,
                             now_ms + std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.recovery_interval)));
        }
      }
      if (options_.log) {
        options_.log(3, absl::StrCat("queue entry of ", destination, " unreadable: ", entry.status().message()));
      }
      continue;
    }
    if (fed_ && entry.ok() && !entry->has_value()) {
      // Settled under an earlier ownership (a lease that outlived its owner's, then
      // acknowledged): the backend says so only with the record as proof. Its chain moves on.
      {
        std::lock_guard lock(mu_);
        if (!Current(lease)) continue;
        (void)index_.Remove(destination, one.seq);
      }
      if (options_.log) {
        options_.log(2, absl::StrCat("queue entry ", one.seq, " of ", destination, " was settled elsewhere: left the index"));
      }
      continue;
    }
    // The index and the backend disagree (gone, or undecodable): the entry stays leased, out of
    // the way until a restart rebuilds the index, rather than spinning on it.
    if (!entry.ok() || !entry->has_value()) continue;
    lease.entry = **std::move(entry);
    leases.push_back(std::move(lease));
  }
  return leases;
}

absl::Time Store::NextDue(const std::string& destination) {
  std::lock_guard lock(mu_);
  if (fed_ && Leasable(destination) == nullptr) return absl::InfiniteFuture();  // Renewed announces the end of a fence
  return index_.NextDue(destination);
}

const Store::Owned* Store::Leasable(const std::string& destination) const {
  const auto it = owned_.find(destination);
  // Past its lease's fence (wall time, as the lease's TTL on the servers), nothing is leased,
  // whatever the store's clock says, until a renewal moves the fence.
  if (it == owned_.end() || it->second.releasing || absl::Now() >= it->second.leasable_until) return nullptr;
  return &it->second;
}

absl::Status Store::Return(const Lease& lease) {
  std::lock_guard lock(mu_);
  return Current(lease) ? index_.Return(lease.destination, lease.seq) : absl::OkStatus();
}

absl::Status Store::Ack(const Lease& lease, absl::string_view remote_ticket, bool created, absl::string_view text) {
  if (remote_ticket.empty() && text.empty()) {
    const Lease* one = &lease;
    return AckBatch({&one, 1});
  }
  // Delivered but not recorded: it stays leased, so nothing delivers it again; the caller acks
  // again once storage is back (a crash first redelivers it once, same id).
  if (auto s = backend_->Delivered(lease, clock_.Now(), remote_ticket, created, text); !s.ok()) return s;
  std::lock_guard lock(mu_);
  return Current(lease) ? index_.Remove(lease.destination, lease.seq) : absl::OkStatus();
}

absl::Status Store::AckBatch(absl::Span<const Lease* const> leases) {
  if (leases.empty()) return absl::OkStatus();
  if (auto s = backend_->Delivered(leases, clock_.Now()); !s.ok()) return s;
  absl::Status removed;
  std::lock_guard lock(mu_);
  for (const Lease* lease : leases) {
    if (Current(*lease)) removed.Update(index_.Remove(lease->destination, lease->seq));
  }
  return removed;
}

absl::Status Store::RetryLater(const Lease& lease, absl::Time due, absl::string_view error) {
  return Reschedule(lease, due, error, 1);
}

absl::Status Store::Postpone(const Lease& lease, absl::Time due, absl::string_view note) {
  return Reschedule(lease, due, note, 0);
}

absl::Status Store::Reschedule(const Lease& lease, absl::Time due, absl::string_view error, uint32_t attempts) {
  QueueEntry entry = lease.entry;
  entry.attempts += attempts;
  entry.next_attempt_unix_ms = absl::ToUnixMillis(due);
  entry.last_error.assign(error.data(), error.size());
  // Not synced: a lost retry record only means the attempt is made again sooner. Delayed in
  // memory even when the write failed, so a failing write does not spin.
  const absl::Status written = backend_->Update(lease, entry, false);
  {
    std::lock_guard lock(mu_);
    if (Current(lease)) {
      if (auto s = index_.Delay(lease.destination, lease.seq, entry.next_attempt_unix_ms); !s.ok()) return s;
    }
  }
  Announce(lease.destination, 1);
  return written;
}

absl::Status Store::MarkSending(const Lease& lease, absl::string_view note) {
  QueueEntry entry = lease.entry;
  ++entry.attempts;
  entry.last_error.assign(note.data(), note.size());
  return backend_->Update(lease, entry, true);  // synced: what a restart reads to know it may have been sent
}

absl::Status Store::DeadLetter(const Lease& lease, absl::string_view error) {
  QueueEntry entry = lease.entry;
  ++entry.attempts;
  entry.last_error.assign(error.data(), error.size());
  // Not moved when the write failed: it stays leased until the caller records it again (or a
  // restart).
  if (auto s = backend_->MoveToDead(lease, entry); !s.ok()) return s;
  std::lock_guard lock(mu_);
  return Current(lease) ? index_.Remove(lease.destination, lease.seq) : absl::OkStatus();
}

absl::StatusOr<int64_t> Store::Requeue(const std::string& destination, std::optional<uint64_t> seq) {
  absl::StatusOr<std::vector<DeadEntry>> moved = backend_->Requeue(destination, seq);
  if (!moved.ok()) return moved.status();
  if (moved->empty()) {
    if (seq) return absl::NotFoundError(absl::StrCat("no dead letter ", *seq, " for ", destination));
    return 0;
  }
  if (fed_) {
    // Back in the queue stream: its owner's feed indexes them (this node's, once fed).
    std::vector<QueuedEntry> queued;
    for (const DeadEntry& m : *moved) queued.push_back(QueuedEntry{destination, m.seq, {}, {}});
    std::unique_lock lock(mu_);
    AwaitFed(lock, queued);
    return static_cast<int64_t>(moved->size());
  }
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  {
    std::lock_guard lock(mu_);
    for (const DeadEntry& m : *moved) {
      AddToIndex(index_, QueuedEntry{destination, m.seq, m.entry.team, IndexEntryOf(m.entry, m.entry.level, now_ms)});
    }
  }
  Announce(destination, moved->size());
  return static_cast<int64_t>(moved->size());
}

std::vector<MessageDelivery> Store::Deliveries(absl::string_view message_key) {
  std::vector<MessageDelivery> out = backend_->Deliveries(message_key);
  // Where each queued one stands in its destination's index: this node's, or (fed) its
  // owner's, asked outside the lock.
  std::vector<MessageDelivery*> elsewhere;
  {
    std::lock_guard lock(mu_);
    for (MessageDelivery& d : out) {
      if (!d.state.empty()) continue;
      std::tie(d.state, d.position) = index_.Standing(d.destination, d.seq, d.entry.level);
      if (fed_ && !owned_.contains(d.destination)) elsewhere.push_back(&d);
    }
  }
  for (MessageDelivery* d : elsewhere) {
    if (auto standing = backend_->PeerStanding(d->destination, d->seq, d->entry.level)) {
      std::tie(d->state, d->position) = *std::move(standing);
    }
  }
  return out;
}

std::vector<QueueDepth> Store::OwnedStats(absl::Time now) {
  std::lock_guard lock(mu_);
  return index_.QueueStats(absl::ToUnixMillis(now));
}

std::pair<std::string, int64_t> Store::Standing(const std::string& destination, uint64_t seq, router::Level level) {
  std::lock_guard lock(mu_);
  return index_.Standing(destination, seq, level);
}

std::vector<QueueDepth> Store::Depths(absl::Time now) {
  std::lock_guard lock(mu_);
  return index_.Depths(absl::ToUnixMillis(now));
}

std::vector<QueueDepth> Store::OldestEntries() {
  std::lock_guard lock(mu_);
  return index_.OldestEntries();
}

std::vector<QueueDepth> Store::QueueStats(absl::Time now, std::vector<std::string>* unanswered) {
  std::vector<QueueDepth> stats = OwnedStats(now);
  if (!fed_) return stats;
  PeerView peers = backend_->PeerStats();
  stats.insert(stats.end(), std::make_move_iterator(peers.depths.begin()), std::make_move_iterator(peers.depths.end()));
  if (unanswered != nullptr) *unanswered = std::move(peers.unanswered);
  return stats;
}

int64_t Store::QueuedEntries() {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace triage::storage
