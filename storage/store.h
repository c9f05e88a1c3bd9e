#pragma once

#include "absl/strings/string_view.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/listener.h"
#include "rocksdb/statistics.h"
#include "storage/clock.h"
#include "storage/codec.h"
#include "storage/queue_index.h"

namespace triage::storage {

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
  // RocksDB's own log lines (severity 0 debug .. 4 fatal, 5 header). They never go to a file on
  // the data disk: a full disk must not make RocksDB fail while it reports the failure. None:
  // dropped.
  std::function<void(int severity, absl::string_view line)> log;
  // While storage is unavailable (a failed write, a background error such as a full disk),
  // how often the store tries to resume: RocksDB's Resume, then a synced probe write.
  absl::Duration recovery_interval = absl::Seconds(1);

  absl::Status Validate() const;
};

// One delivery that a message needs: its destination and the team it is for.
struct Delivery {
  std::string destination;
  std::string team;
  bool owner = true;
  bool reply = false;  // the acknowledgement to the customer (owner is then true)
};

// One routed message as an ingest request stores it.
struct NewMessage {
  std::string key;  // MessageKey(source, id): the dedup key
  std::string ticket_json;
  router::Level level = router::Level::kLow;
  std::vector<Delivery> deliveries;  // empty for a dropped message: kept for dedup only
  absl::Time sla_deadline = absl::InfinitePast();  // InfinitePast: none
  // The ticket thread (ThreadKey); empty means the message is a thread of its own.
  std::string thread_key;
  // When set, records that this conversation's owner is `conversation.team`, at
  // `conversation.level` (affinity, and what an escalation must exceed).
  std::string conversation_key;
  router::ConversationOwner conversation;
};

struct IngestResult {
  absl::Status status;  // Unavailable / ResourceExhausted when nothing was stored
  int stored = 0;
  int duplicates = 0;
  uint64_t quarantine_id = 0;  // when the request was quarantined too
  std::vector<bool> duplicate;  // per message of the request, when stored
};

// A leased queue entry: in flight with one delivery worker until Ack, RetryLater or
// DeadLetter. Leases live in memory only: after a crash every entry is in its queue again.
struct Lease {
  std::string destination;
  uint64_t seq = 0;
  QueueEntry entry;
  bool early = false;  // leased ahead of its back-off as a probe (LeaseNext's `probe`)
};

// One entry of the dead-letter set, as the admin API lists it.
struct DeadEntry {
  std::string destination;
  uint64_t seq = 0;
  QueueEntry entry;
};

// One delivery of a message, as the admin API shows it.
struct MessageDelivery {
  std::string destination;
  uint64_t seq = 0;
  QueueEntry entry;
  // queued (ready to lease), in_flight, retrying (in back-off), waiting_for_thread (behind an
  // earlier entry of its thread), dead_letter, delivered (then `entry` holds only team, owner
  // and attempts).
  std::string state;
  // For a queued entry, 1 for the next to be leased: ready entries of a higher level, then
  // earlier ones of its level, are ahead (aging not counted). -1 otherwise.
  int64_t position = -1;
  absl::Time delivered_at = absl::InfinitePast();  // delivered
  std::string remote_ticket;                       // delivered: the helpdesk's ticket, if any
  std::string text;                                // a delivered reply's text
};

// The message whose delivery created a helpdesk ticket, as it was delivered.
struct TicketOrigin {
  std::string message_key;
  std::string ticket_json;
};

// The thread of a follow-up: one author in one conversation. Replies of other customers under
// the same post are threads of their own, so a viral post does not become one huge ticket.
std::string ThreadKey(absl::string_view source, absl::string_view conversation_id,
                      absl::string_view author_id);

// Whether the store can take writes. Unavailable from the first failed write or background
// error (ENOSPC, EIO) until a resume succeeds; writes are refused at once meanwhile.
struct StorageHealth {
  bool available = true;
  std::string error;              // the first error of the episode (for logs, never for clients)
  absl::Time since;               // when it became unavailable
  int64_t errors = 0;             // failed writes and background errors since open
  int64_t recoveries = 0;         // episodes ended by a successful resume
};

// The durable store: message records (dedup index), one priority queue per destination, dead
// letters. RocksDB is the truth; an in-memory index of queue keys (about 80 bytes of heap an
// entry, measured by bench/store_bench; bounded by max_queued_entries) serves leasing without
// scanning over deleted keys.
//
// Thread-safety: every method is safe to call from any thread. Submit never blocks on disk:
// a writer thread gathers all pending requests into one WriteBatch and one synced WAL write
// (group commit), then runs the callbacks on that thread.
class Store {
 public:
  // `entries`: how many became leasable (a wake-up hint; a change of due times counts one).
  using ReadyCallback = std::function<void(const std::string& destination, size_t entries)>;

  // Opens or creates the database and rebuilds the queue index. `now` decides which
  // recovered entries are still in back-off.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options, absl::Time now);
  ~Store();  // stops the writer (pending requests are committed first) and closes RocksDB

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  StorageHealth Health();
  bool Available() const { return available_.load(); }  // Health().available, without a lock

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
  struct Quarantined {
    uint64_t id = 0;
    QuarantineRecord record;
  };
  absl::StatusOr<std::vector<Quarantined>> ListQuarantine(uint64_t after, size_t limit);
  absl::StatusOr<std::optional<Quarantined>> FindQuarantined(uint64_t id);
  // Replayed and fully read: removed, synced.
  absl::Status ReleaseQuarantined(uint64_t id);
  // About how many are kept (RocksDB's estimate; expired ones leave at compaction).
  int64_t QuarantineEstimate();

  // Leases the best entry of `destination` that is due at `now`: highest level first (after
  // aging), then oldest. Entries of one (team, thread) leave in arrival order: a follow-up is
  // leasable only once the entries before it are acknowledged or dead-lettered, so it never
  // reaches a helpdesk before its ticket exists. nullopt when nothing is due. An entry that
  // cannot be read (an I/O error) is not leased: it is due again after recovery_interval.
  // With `probe`, when nothing is due, the entry due soonest is leased ahead of its back-off
  // (Lease::early): a failing destination tries one call to see whether it is back.
  // Reads RocksDB: call it where waiting on the disk is fine.
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
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(const Lease& lease);
  // `owner`: the conversation's ticket; otherwise the informed `team`'s own.
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(absl::string_view destination, bool owner,
                                                               absl::string_view team, absl::string_view thread);
  // The message that created ticket `ticket` at `destination`: NotFound when none did within
  // the ticket origin window; other errors are read errors (try again later).
  absl::StatusOr<TicketOrigin> FindTicketOrigin(absl::string_view destination, absl::string_view ticket);

  // Labels agents gave messages (through helpdesk feedback), kept until deleted: one record
  // per message key, replaced by a later label, written synced.
  absl::Status PutLabel(absl::string_view message_key, absl::string_view record);
  // The label record of a message; nullopt when it has none, an error when it cannot be read.
  absl::StatusOr<std::optional<std::string>> Label(absl::string_view message_key);
  // Up to `limit` label records in key order, starting after `after` (empty: from the first).
  // `*last` is the key of the last one returned (empty when none): the next page's `after`.
  absl::StatusOr<std::vector<std::string>> Labels(absl::string_view after, size_t limit, std::string* last);
  int64_t LabelCount();

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
  absl::StatusOr<std::optional<router::ConversationOwner>> ConversationTeam(absl::string_view key, absl::Time since);
  // The same from memory alone (memtables and block cache), never waiting on a file: nullopt
  // when the answer needs the disk (then ask ConversationTeam where blocking is fine).
  std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> ConversationTeamInMemory(
      absl::string_view key, absl::Time since);

  // A destination-wide pause that outlives a restart (a helpdesk's Retry-After): recorded
  // durably; InfinitePast when none was recorded, an error when it cannot be read.
  absl::Status SetDestinationPause(absl::string_view destination, absl::Time until);
  absl::StatusOr<absl::Time> DestinationPause(absl::string_view destination);

  // A pause an operator asked for (admin API): it holds until resumed, restarts included. An
  // error when it cannot be read (the caller holds the destination paused meanwhile).
  absl::Status SetManualPause(absl::string_view destination, bool paused);
  absl::StatusOr<bool> ManualPause(absl::string_view destination);

  // RocksDB's own figures, for the metrics.
  struct StorageStats {
    uint64_t live_bytes = 0;                // SST files of every column family
    uint64_t pending_compaction_bytes = 0;  // estimate
    bool writes_stopped = false;            // a write stall is in force
    uint64_t delayed_write_rate = 0;        // bytes/s when writes are slowed, else 0
    uint64_t wal_syncs = 0;                 // since open
    double wal_sync_seconds = 0;            // their total duration
    uint64_t stall_micros = 0;              // time writes waited on stalls, since open
  };
  StorageStats Stats();

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
  // scrape.
  std::vector<QueueDepth> QueueStats(absl::Time now);
  // Up to `limit` dead letters of `destination` (every destination when empty), oldest first.
  std::vector<DeadEntry> DeadLetters(absl::string_view destination, size_t limit);
  // Moves dead letters back into their queue with a fresh attempt count, in one synced
  // write: the one with `seq`, or all of the destination when `seq` is nullopt. Returns how
  // many moved; NotFound when `seq` names none. A requeued entry joins the end of its thread.
  absl::StatusOr<int64_t> Requeue(const std::string& destination, std::optional<uint64_t> seq);
  int64_t DeadLetterCount();
  int64_t QueuedEntries();

  // Compacts every column family now (maintenance; also how tests see expiry happen).
  absl::Status Compact();

  // Test and admin helper: the stored ticket JSON of a message, NotFound if none.
  absl::StatusOr<std::string> GetMessage(absl::string_view key);

 private:
  struct Pending {
    std::vector<NewMessage> messages;
    absl::Time received_at;
    absl::AnyInvocable<void(IngestResult)> done;
    std::optional<QuarantineRecord> quarantine;
  };

  Store(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
        std::vector<rocksdb::ColumnFamilyHandle*> handles);
  absl::Status Recover(absl::Time now);
  void WriterLoop();
  // Records a failed write or background error: the store becomes unavailable.
  void WriteFailed(const absl::Status& status);
  std::vector<Lease> Leases(const std::string& destination, absl::Time now, size_t limit, bool probe);
  // The writes of one delivered lease: out of the queue, into the delivered records.
  void AddDelivered(rocksdb::WriteBatch& batch, const Lease& lease, int64_t now_ms, absl::string_view remote_ticket,
                    absl::string_view text);
  // RetryLater and Postpone: due again at `due`, `attempts` more attempts counted.
  absl::Status Reschedule(const Lease& lease, absl::Time due, absl::string_view error, uint32_t attempts);
  // While unavailable: RocksDB's Resume and a synced probe write; true when both succeed.
  bool TryResume();
  void CommitGroup(std::vector<Pending>& group);

  const StoreOptions options_;
  const Clock& clock_;
  std::shared_ptr<rocksdb::CompactionFilter> filter_;  // declared before db_: outlives it
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* messages_cf_;
  rocksdb::ColumnFamilyHandle* queue_cf_;
  rocksdb::ColumnFamilyHandle* dead_cf_;
  rocksdb::ColumnFamilyHandle* meta_cf_;
  rocksdb::ColumnFamilyHandle* conversations_cf_;
  rocksdb::ColumnFamilyHandle* tickets_cf_;
  rocksdb::ColumnFamilyHandle* by_message_cf_;
  rocksdb::ColumnFamilyHandle* ticket_origins_cf_;
  rocksdb::ColumnFamilyHandle* labels_cf_;
  rocksdb::ColumnFamilyHandle* delivered_cf_;
  rocksdb::ColumnFamilyHandle* quarantine_cf_;
  std::shared_ptr<rocksdb::CompactionFilter> origin_filter_;  // like filter_
  std::shared_ptr<rocksdb::CompactionFilter> quarantine_filter_;  // like filter_
  class ErrorListener;
  std::shared_ptr<ErrorListener> listener_;  // background errors
  std::atomic<bool> available_{true};  // mirrors health_.available, read without the lock

  std::mutex mu_;  // guards everything below
  std::condition_variable writer_cv_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  uint64_t next_seq_ = 1;
  uint64_t next_quarantine_id_ = 1;  // the writer thread's, after Recover
  QueueIndex index_;  // the queues' order and counts
  int64_t dead_letters_ = 0;
  int64_t labels_ = 0;
  std::mutex health_mu_;  // guards health_ (not mu_: RocksDB reports errors from its threads)
  StorageHealth health_;
  ReadyCallback ready_callback_;

  std::thread writer_;
};

}  // namespace triage::storage
