#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "storage/backend.h"
#include "storage/clock.h"
#include "storage/codec.h"
#include "storage/queue_index.h"
#include "storage/store_options.h"
#include "storage/write_path.h"

namespace triage::storage {

// The thread of a follow-up: one author in one conversation. Replies of other customers under
// the same post are threads of their own, so a viral post does not become one huge ticket.
std::string ThreadKey(absl::string_view source, absl::string_view conversation_id,
                      absl::string_view author_id);

// The durable store: message records (dedup index), one priority queue per destination, dead
// letters. Three parts over one Backend (RocksDB today), which is the truth:
// - the queue index (QueueIndex, in memory, about 80 bytes of heap an entry, measured by
//   bench/store_bench; bounded by max_queued_entries) decides what is leased next, and is
//   rebuilt from the backend at start (RebuildIndex);
// - the write path (WritePath) stores ingest requests in groups and keeps the store's health;
// - the delivery operations below change an entry in the backend, then in the index.
// Over a backend shared by several nodes (Backend::Fed, JetStream) the index holds only the
// queues this node owns, fed by the backend (QueueFeed) with every entry whichever node stored
// it; Submit's answer still waits (up to 2 s) until an owned queue's new entries are indexed.
//
// Thread-safety: every method is safe to call from any thread. Submit never blocks on disk:
// a writer thread gathers all pending requests into one durable write (group commit), then
// runs the callbacks on that thread. The index has its own lock, held for memory work only.
class Store : private QueueFeed {
 public:
  // `entries`: how many became leasable (a wake-up hint; a change of due times counts one).
  using ReadyCallback = std::function<void(const std::string& destination, size_t entries)>;

  using Quarantined = storage::Quarantined;
  using StorageStats = storage::StorageStats;

  // Opens or creates the RocksDB database at `options.path` and rebuilds the queue index.
  // `now` decides which recovered entries are still in back-off.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options, absl::Time now);
  // The same over another backend.
  static absl::StatusOr<std::unique_ptr<Store>> Open(std::unique_ptr<Backend> backend, const StoreOptions& options,
                                                     absl::Time now);
  // Stops the writer (pending requests are committed first), hands owned queues over (a shared
  // backend), then closes the backend.
  ~Store() override;

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  StorageHealth Health() { return write_path_.Health(); }
  bool Available() const { return write_path_.Available(); }  // Health().available, without a lock

  // Called (on the writer thread, or the caller of RetryLater) whenever entries of a
  // destination become leasable. Set before traffic starts.
  void SetReadyCallback(ReadyCallback callback);

  // Stores every message of one request atomically: each new message record, its queue
  // entries, all or nothing. Messages whose key is already stored within the dedup window
  // count as duplicates and add nothing. `done` runs once, on the writer thread, after the WAL
  // is synced or the write failed; it may be called before Submit returns when the request
  // is refused at once (queue full, store closing).
  // With `quarantine`, the raw request is kept too, in the same synced write (its id in the
  // result): what the parser could not read is stored before the request is acknowledged.
  void Submit(std::vector<NewMessage> messages, absl::Time received_at,
              absl::AnyInvocable<void(IngestResult)> done,
              std::optional<QuarantineRecord> quarantine = std::nullopt);

  // The quarantine: requests the parser could not read (all or part of them), kept raw for
  // `quarantine_retention`, oldest first, ids after `after`.
  absl::StatusOr<std::vector<Quarantined>> ListQuarantine(uint64_t after, size_t limit) {
    return backend_->ListQuarantine(after, limit);
  }
  absl::StatusOr<std::optional<Quarantined>> FindQuarantined(uint64_t id) { return backend_->FindQuarantined(id); }
  // Replayed and fully read: removed, synced.
  absl::Status ReleaseQuarantined(uint64_t id) { return backend_->ReleaseQuarantined(id); }
  // About how many are kept (an estimate; expired ones leave at compaction).
  int64_t QuarantineEstimate() { return backend_->QuarantineEstimate(); }

  // Leases the best entry of `destination` that is due at `now`: highest level first (after
  // aging), then oldest. Entries of one (team, thread) leave in arrival order: a follow-up is
  // leasable only once the entries before it are acknowledged or dead-lettered, so it never
  // reaches a helpdesk before its ticket exists. nullopt when nothing is due. An entry that
  // cannot be read (an I/O error) is not leased: it is due again after recovery_interval.
  // With `probe`, when nothing is due, the entry due soonest is leased ahead of its back-off
  // (Lease::early): a failing destination tries one call to see whether it is back.
  // Reads the backend: call it where waiting on the disk is fine.
  std::optional<Lease> LeaseNext(const std::string& destination, absl::Time now, bool probe = false);
  // Leases up to `limit` due entries of `destination` at once, in the order LeaseNext would
  // (no probe): one lock, for a destination that sends many at a time.
  std::vector<Lease> LeaseBatch(const std::string& destination, absl::Time now, size_t limit);
  // An early lease (a probe) failed: the entry goes back to its own back-off unchanged, its
  // attempts not counted. Memory only: nothing was written for it.
  absl::Status Return(const Lease& lease);
  // The earliest time an entry in back-off becomes due; InfiniteFuture when none waits.
  absl::Time NextDue(const std::string& destination);

  // Delivered: the entry leaves the queue. (Not synced: a lost ack means one redelivery with
  // the same idempotency key, never a loss.) When the write fails the entry stays leased, so it
  // is not delivered again: call Ack again once storage is back; a crash before then
  // redelivers it once, with the same id. DeadLetter keeps it leased on failure too.
  // With `remote_ticket`, the thread's ticket at this destination is recorded in the same
  // synced write, with the entry's level and team (a ticket created, `created`, or one a
  // follow-up raised): a ticket that was acknowledged is never created again, follow-ups find
  // it, and a more urgent one raises it. A created ticket's origin (TicketOrigin) is kept for
  // `ticket_origin_window`.
  // A reply's `text` (what the customer was told) is kept in its delivery record.
  absl::Status Ack(const Lease& lease, absl::string_view remote_ticket = {}, bool created = true,
                   absl::string_view text = {});
  // Ack of many leases without a ticket or text, in one write batch (not synced, as above):
  // all recorded or none. On failure every lease stays leased, as with Ack.
  absl::Status AckBatch(absl::Span<const Lease* const> leases);
  // The ticket of the lease's thread at its destination, if one was recorded within the dedup
  // window of its last delivery; an error when it cannot be read (try again later: never
  // "none", which would open a second ticket). The owner's entries of a thread share one ticket
  // whatever their team (one conversation, one ticket: an escalation may move it); an informed
  // team's entry has its own.
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(const Lease& lease) {
    return backend_->FindThreadTicket(lease);
  }
  // `owner`: the conversation's ticket; otherwise the informed `team`'s own.
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(absl::string_view destination, bool owner,
                                                               absl::string_view team, absl::string_view thread) {
    return backend_->FindThreadTicket(destination, owner, team, thread);
  }
  // The message that created ticket `ticket` at `destination`: NotFound when none did within
  // the ticket origin window; other errors are read errors (try again later).
  absl::StatusOr<TicketOrigin> FindTicketOrigin(absl::string_view destination, absl::string_view ticket) {
    return backend_->FindTicketOrigin(destination, ticket);
  }

  // Labels agents gave messages (through helpdesk feedback), kept until deleted: one record
  // per message key, replaced by a later label, written synced.
  absl::Status PutLabel(absl::string_view message_key, absl::string_view record) {
    return backend_->PutLabel(message_key, record);
  }
  // The label record of a message; nullopt when it has none, an error when it cannot be read.
  absl::StatusOr<std::optional<std::string>> Label(absl::string_view message_key) {
    return backend_->Label(message_key);
  }
  // Up to `limit` label records in key order, starting after `after` (empty: from the first).
  // `*last` is the key of the last one returned (empty when none): the next page's `after`.
  absl::StatusOr<std::vector<std::string>> Labels(absl::string_view after, size_t limit, std::string* last) {
    return backend_->Labels(after, limit, last);
  }
  int64_t LabelCount() { return backend_->LabelCount(); }

  // The deliveries of a message: queued, dead-lettered, and delivered within the dedup window.
  std::vector<MessageDelivery> Deliveries(absl::string_view message_key);
  // Failed, to try again at `due`; attempts and the error are recorded durably.
  absl::Status RetryLater(const Lease& lease, absl::Time due, absl::string_view error);
  // About to be sent where a lost answer cannot be told from a refusal and a retry could repeat
  // it (a reply to the customer): its attempt and `note` are recorded, synced, before it goes,
  // and it stays leased. A restart then finds the note instead of sending it again blindly.
  absl::Status MarkSending(const Lease& lease, absl::string_view note);
  // Not ready yet (an alert waiting for the ticket it links to): due again at `due`, its
  // attempts unchanged, `note` recorded as its last error.
  absl::Status Postpone(const Lease& lease, absl::Time due, absl::string_view note);
  // Gave up: the entry moves to the dead-letter set with its error, atomically.
  absl::Status DeadLetter(const Lease& lease, absl::string_view error);

  // The owner team of a conversation routed at or after `since`; nullopt when none, an error
  // when it cannot be read (the request is answered 503 and retried).
  absl::StatusOr<std::optional<router::ConversationOwner>> ConversationTeam(absl::string_view key, absl::Time since) {
    return backend_->ConversationTeam(key, since);
  }
  // The same from memory alone (memtables and block cache), never waiting on a file: nullopt
  // when the answer needs the disk (then ask ConversationTeam where blocking is fine).
  std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> ConversationTeamInMemory(
      absl::string_view key, absl::Time since) {
    return backend_->ConversationTeamInMemory(key, since);
  }

  // A destination-wide pause that outlives a restart (a helpdesk's Retry-After): recorded
  // durably; InfinitePast when none was recorded, an error when it cannot be read.
  absl::Status SetDestinationPause(absl::string_view destination, absl::Time until) {
    return backend_->SetDestinationPause(destination, until);
  }
  absl::StatusOr<absl::Time> DestinationPause(absl::string_view destination) {
    return backend_->DestinationPause(destination);
  }

  // A pause an operator asked for (admin API): it holds until resumed, restarts included. An
  // error when it cannot be read (the caller holds the destination paused meanwhile).
  absl::Status SetManualPause(absl::string_view destination, bool paused) {
    return backend_->SetManualPause(destination, paused);
  }
  absl::StatusOr<bool> ManualPause(absl::string_view destination) { return backend_->ManualPause(destination); }

  // The storage engine's own figures, for the metrics.
  StorageStats Stats() { return backend_->Stats(); }

  // Entries per (destination, team, level) with their SLA at risk and overdue at `now`. The
  // SLA counts come from per-key deadline histograms in 10-second steps (a point in time is
  // counted up to 10 s late): cheap enough for every scrape, whatever the queue depth.
  std::vector<QueueDepth> Depths(absl::Time now);
  // The arrival time of the oldest entry per (destination, level) that has any, in `entries`
  // of QueueDepth (team empty). Cheap enough for every scrape: the head of each ready level,
  // plus the entries in back-off, leased or waiting behind their thread.
  std::vector<QueueDepth> OldestEntries();
  // Depths with the arrival time of each (destination, team, level)'s oldest entry and exact
  // SLA counts at `now`. Walks the whole index under the lock: an admin call, not for every
  // scrape. On a shared backend, for the whole cluster: the other nodes' owned queues asked
  // (the members that did not answer in `unanswered`).
  std::vector<QueueDepth> QueueStats(absl::Time now, std::vector<std::string>* unanswered = nullptr);
  // Up to `limit` dead letters of `destination` (every destination when empty), oldest first.
  std::vector<DeadEntry> DeadLetters(absl::string_view destination, size_t limit) {
    return backend_->DeadLetters(destination, limit);
  }
  // Moves dead letters back into their queue with a fresh attempt count, in one synced
  // write: the one with `seq`, or all of the destination when `seq` is nullopt. Returns how
  // many moved; NotFound when `seq` names none. A requeued entry joins the end of its thread.
  absl::StatusOr<int64_t> Requeue(const std::string& destination, std::optional<uint64_t> seq);
  int64_t DeadLetterCount() { return backend_->DeadLetterCount(); }
  int64_t QueuedEntries();

  // Compacts every column family now (maintenance; also how tests see expiry happen).
  absl::Status Compact() { return backend_->Compact(); }

  // Test and admin helper: the stored ticket JSON of a message, NotFound if none.
  absl::StatusOr<std::string> GetMessage(absl::string_view key) { return backend_->GetMessage(key); }

 private:
  Store(std::unique_ptr<Backend> backend, const StoreOptions& options);

  // QueueFeed (a shared backend): the index holds the owned destinations' entries only, added in
  // seq order by Entry, whichever node stored them.
  void Acquired(const std::string& destination, uint64_t generation) override;
  void Renewed(const std::string& destination, uint64_t generation, absl::Time until) override;
  void Following(const std::string& destination, uint64_t generation) override;
  void Entry(uint64_t generation, const QueuedEntry& entry) override;
  bool Release(const std::string& destination) override;
  void Lost(const std::string& destination) override;
  std::vector<QueueDepth> OwnedStats(absl::Time now) override;
  std::pair<std::string, int64_t> Standing(const std::string& destination, uint64_t seq, router::Level level) override;
  // Fed: waits (a bounded while) until the feed has added `queued` of owned destinations that are
  // followed (a queue still replaying is not waited for), so that
  // what a caller was told is stored can be leased at once. Holds `lock` (on mu_).
  void AwaitFed(std::unique_lock<std::mutex>& lock, absl::Span<const QueuedEntry> queued);
  // Whether `lease` belongs to the index as it is: always, unless fed, when its destination is
  // still owned under the ownership it was leased in. A lease that outlived its ownership (the
  // queue was taken over, or dropped and taken again and replayed) changes the backend only.
  // Under mu_.
  bool Current(const Lease& lease) const;
  struct Owned;
  // Fed: its ownership when `destination` is owned here, not handed over, and within its
  // lease's fence; else null. Under mu_.
  const Owned* Leasable(const std::string& destination) const;
  std::vector<Lease> Leases(const std::string& destination, absl::Time now, size_t limit, bool probe);
  // RetryLater and Postpone: due again at `due`, `attempts` more attempts counted.
  absl::Status Reschedule(const Lease& lease, absl::Time due, absl::string_view error, uint32_t attempts);
  // Entries became leasable: the ready callback, outside the lock.
  void Announce(const std::string& destination, size_t entries);

  const StoreOptions options_;
  const Clock& clock_;
  const std::unique_ptr<Backend> backend_;

  std::mutex mu_;  // guards index_, ready_callback_ and owned_
  QueueIndex index_;  // the queues' order and counts
  ReadyCallback ready_callback_;
  // Fed (a shared backend): the destinations this node owns.
  struct Owned {
    uint64_t generation = 0;
    uint64_t fed_seq = 0;    // the last entry fed
    bool releasing = false;  // handing over: nothing more is leased
    bool following = false;  // replayed: new entries are fed as they are stored
    // fed_seq when a write last waited for the feed in vain: not waited for while it stays there
    uint64_t stalled_at = std::numeric_limits<uint64_t>::max();
    absl::Time leasable_until = absl::InfinitePast();  // wall time: the lease's fence
  };
  const bool fed_;
  absl::flat_hash_map<std::string, Owned> owned_;
  std::condition_variable fed_cv_;  // an entry was fed, or a destination left

  WritePath write_path_;  // declared last: stopped first
};

}  // namespace triage::storage
