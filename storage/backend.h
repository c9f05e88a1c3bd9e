#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "router/message.h"
#include "storage/codec.h"
#include "storage/queue_index.h"

namespace triage::storage {

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

// One ingest request: its messages, and with `quarantine` the raw request the parser could not
// read (all or part of it), kept in the same write.
struct IngestRequest {
  std::vector<NewMessage> messages;
  absl::Time received_at;
  std::optional<QuarantineRecord> quarantine;
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
  uint64_t generation = 0;  // the ownership it was leased under (a shared backend's QueueFeed)
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
  // and attempts), unknown (a cluster's records could not be read: `entry` is empty).
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

// A request kept in the quarantine, with its id.
struct Quarantined {
  uint64_t id = 0;
  QuarantineRecord record;
};

// The storage engine's own figures, for the metrics.
struct StorageStats {
  uint64_t live_bytes = 0;                // table files of every column family
  uint64_t pending_compaction_bytes = 0;  // estimate
  bool writes_stopped = false;            // a write stall is in force
  uint64_t delayed_write_rate = 0;        // bytes/s when writes are slowed, else 0
  uint64_t wal_syncs = 0;                 // since open
  double wal_sync_seconds = 0;            // their total duration
  uint64_t stall_micros = 0;              // time writes waited on stalls, since open
};

// An entry that joined its destination's queue, as the queue index needs it (`entry.team` is
// left for the index to assign from `team`). The views point into the data of the call that
// reports it.
struct QueuedEntry {
  absl::string_view destination;
  uint64_t seq = 0;
  absl::string_view team;
  IndexEntry entry;
};

// The index's view of a stored entry: urgent-first order, back-off due at `next_attempt` when
// still ahead of `now_ms`, its chain and the owner's SLA deadline.
template <typename Entry>  // QueueEntry or QueueEntryView
IndexEntry IndexEntryOf(const Entry& entry, router::Level level, int64_t now_ms) {
  return IndexEntry{.enqueued_unix_ms = entry.enqueued_unix_ms,
                    .due_unix_ms = entry.next_attempt_unix_ms > now_ms ? entry.next_attempt_unix_ms : 0,
                    .sla_deadline_unix_ms = entry.owner ? entry.sla_deadline_unix_ms : 0,
                    .chain = ChainOf(entry.owner, entry.team, entry.thread, entry.message_key),
                    .level = level};
}

// The queue entry a new message gets for one of its deliveries, received at `received_ms`.
inline QueueEntry EntryOf(const NewMessage& message, const Delivery& delivery, int64_t received_ms) {
  QueueEntry entry;
  entry.message_key = message.key;
  entry.team = delivery.team;
  entry.thread = message.thread_key.empty() ? message.key : message.thread_key;
  entry.owner = delivery.owner || delivery.reply;
  entry.reply = delivery.reply;
  entry.level = message.level;
  entry.enqueued_unix_ms = received_ms;
  // The SLA binds the owner's ticket, not the acknowledgement to the customer.
  entry.sla_deadline_unix_ms =
      message.sla_deadline == absl::InfinitePast() || delivery.reply ? 0 : absl::ToUnixMillis(message.sla_deadline);
  entry.ticket_json = message.ticket_json;
  return entry;
}

// A delivered record as stored (its time, then EncodeDelivered) for the admin view; nullopt
// when it cannot be read.
inline std::optional<MessageDelivery> DeliveredFromRecord(absl::string_view destination, uint64_t seq,
                                                          absl::string_view value) {
  const std::optional<int64_t> when = MessageRecordTime(value);
  if (!when) return std::nullopt;
  std::optional<DeliveredRecord> record = DecodeDelivered(value.substr(8));
  if (!record) return std::nullopt;
  MessageDelivery d{std::string(destination), seq, {}, "delivered", -1};
  d.entry.attempts = record->attempts;
  d.entry.team = std::move(record->team);
  d.entry.owner = record->owner;
  d.entry.reply = record->reply;
  d.delivered_at = absl::FromUnixMillis(*when);
  d.remote_ticket = std::move(record->remote_ticket);
  d.text = std::move(record->text);
  return d;
}

// What a backend shared by several nodes (JetStream) tells the store of this one: which
// destinations it owns, and every entry of those, whichever node stored it. Implemented by
// Store; called from the backend's threads.
class QueueFeed {
 public:
  virtual ~QueueFeed() = default;
  // This node owns `destination` from now, as ownership `generation` (new at each acquisition).
  // Its entries follow through Entry.
  virtual void Acquired(const std::string& destination, uint64_t generation) = 0;
  // Its lease holds until `until` (wall time): nothing of it is leased after that unless it is
  // renewed again. The index and the leases in flight stay, so a renewal after a stall (a
  // server's election) resumes at once; only a lost lease (Lost) drops them.
  virtual void Renewed(const std::string& destination, uint64_t generation, absl::Time until) = 0;
  // Its queue was replayed: from now its entries come as they are stored (until then a write
  // does not wait for its entries to be fed).
  virtual void Following(const std::string& destination, uint64_t generation) = 0;
  // An entry of an owned destination: each destination's in seq order, every one the queue holds
  // (replayed first, then as stored by any node). Ignored when `generation` is no longer the
  // destination's.
  virtual void Entry(uint64_t generation, const QueuedEntry& entry) = 0;
  // A clean handover: nothing of `destination` is leased from now; true once none is in flight
  // either, and the destination has left the index (call it again until then).
  virtual bool Release(const std::string& destination) = 0;
  // Ownership ended without a handover (another node holds the queue, or this one could not
  // renew in time): the destination leaves the index now, in-flight leases included.
  virtual void Lost(const std::string& destination) = 0;
  // What other nodes ask of this one's index (the admin API and the place in line answer for
  // the whole cluster from any node): the owned queues' stats, and where an entry stands.
  virtual std::vector<QueueDepth> OwnedStats(absl::Time now) = 0;
  virtual std::pair<std::string, int64_t> Standing(const std::string& destination, uint64_t seq, router::Level level) = 0;
};

// The queues other nodes own, as their indexes see them (PeerStats).
struct PeerView {
  std::vector<QueueDepth> depths;
  std::vector<std::string> unanswered;  // members that did not answer in time: their queues are left out
};

// Where the records live: message records (the dedup index), queue entries, dead letters,
// tickets, labels, conversations, pauses, the quarantine. The durable half of the store, with
// no queue order and no threads of its own: `Store` keeps the queue index over it and runs
// the group-commit writer (WritePath) and the rebuild at start (RebuildIndex) on it.
//
// Thread-safety: every method may be called from any thread at once, except that Commit is
// called by one thread at a time (the writer) and Replay before any other call.
//
// Errors: a failed write is returned and also reported to the error handler (as is a failure
// the engine finds on its own, such as a full disk during a flush); Unavailable means storage,
// anything else a refusal of this one call.
class Backend {
 public:
  virtual ~Backend() = default;

  // Where write failures go (from any thread); none before it is set. Set it to none before the
  // receiver goes away.
  virtual void SetErrorHandler(std::function<void(const absl::Status&)> handler) = 0;
  // While storage is unavailable: tries to make it take writes again (the engine's resume, then
  // a synced probe write). OK when it does.
  virtual absl::Status Resume() = 0;

  // Recovery: every queued entry, each destination's in seq order, to `queued` (a `team` view
  // valid during the call). `now` decides which entries are still in back-off.
  virtual absl::Status Replay(absl::Time now, absl::FunctionRef<void(const QueuedEntry&)> queued) = 0;

  // The write path: stores a group of requests with one durable write. Per request, messages
  // whose key is stored within the dedup window (or earlier in the group) are duplicates; the
  // others get their message record, conversation record and one queue entry per delivery,
  // whole or not at all (`results`, one per request: a request whose lookups failed is left
  // out with its error). The status is the write's: on failure nothing of the group is stored.
  // `queued` gets the entries written, each destination's in seq order (a seq is unique within its
  // destination), viewing `group`.
  virtual absl::Status Commit(absl::Span<IngestRequest> group, absl::Span<IngestResult> results,
                              std::vector<QueuedEntry>& queued) = 0;

  // A queue entry by its place; nullopt only when it is gone for good (delivered or
  // dead-lettered). An error when that cannot be told yet: the caller reads it again later.
  virtual absl::StatusOr<std::optional<QueueEntry>> ReadEntry(absl::string_view destination, router::Level level,
                                                              uint64_t seq) = 0;
  // Delivered, out of their queues into the delivery records, at `now`: all or none, not synced.
  virtual absl::Status Delivered(absl::Span<const Lease* const> leases, absl::Time now) = 0;
  // Delivered with the thread's ticket (`remote_ticket`, synced, with its origin when `created`)
  // or a reply's `text`.
  virtual absl::Status Delivered(const Lease& lease, absl::Time now, absl::string_view remote_ticket, bool created,
                                 absl::string_view text) = 0;
  // Rewrites a leased entry in place (attempts, due time, last error); `sync` when a restart
  // must see it.
  virtual absl::Status Update(const Lease& lease, const QueueEntry& entry, bool sync) = 0;
  // Moves a leased entry, as `entry`, to the dead letters, synced.
  virtual absl::Status MoveToDead(const Lease& lease, const QueueEntry& entry) = 0;
  // Moves dead letters of `destination` (the one with `seq`, or all) back into their queue
  // with a fresh attempt count, synced; the moved ones, in seq order, each with its seq in the
  // queue now (its own, or a new one at the end of the queue).
  virtual absl::StatusOr<std::vector<DeadEntry>> Requeue(const std::string& destination,
                                                         std::optional<uint64_t> seq) = 0;
  virtual std::vector<DeadEntry> DeadLetters(absl::string_view destination, size_t limit) = 0;
  virtual int64_t DeadLetterCount() = 0;
  // The deliveries of a message: queued (state empty: the index knows where it stands),
  // dead-lettered, and delivered within the dedup window.
  virtual std::vector<MessageDelivery> Deliveries(absl::string_view message_key) = 0;
  virtual absl::StatusOr<std::string> GetMessage(absl::string_view key) = 0;

  // The semantics of these are Store's, which passes them on.
  virtual absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(const Lease& lease) = 0;
  virtual absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(absl::string_view destination, bool owner,
                                                                       absl::string_view team,
                                                                       absl::string_view thread) = 0;
  virtual absl::StatusOr<TicketOrigin> FindTicketOrigin(absl::string_view destination, absl::string_view ticket) = 0;
  virtual absl::Status PutLabel(absl::string_view message_key, absl::string_view record) = 0;
  virtual absl::StatusOr<std::optional<std::string>> Label(absl::string_view message_key) = 0;
  virtual absl::StatusOr<std::vector<std::string>> Labels(absl::string_view after, size_t limit,
                                                          std::string* last) = 0;
  virtual int64_t LabelCount() = 0;
  virtual absl::StatusOr<std::optional<router::ConversationOwner>> ConversationTeam(absl::string_view key,
                                                                                  absl::Time since) = 0;
  virtual std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> ConversationTeamInMemory(
      absl::string_view key, absl::Time since) = 0;
  virtual absl::Status SetDestinationPause(absl::string_view destination, absl::Time until) = 0;
  virtual absl::StatusOr<absl::Time> DestinationPause(absl::string_view destination) = 0;
  virtual absl::Status SetManualPause(absl::string_view destination, bool paused) = 0;
  virtual absl::StatusOr<bool> ManualPause(absl::string_view destination) = 0;
  virtual absl::StatusOr<std::vector<Quarantined>> ListQuarantine(uint64_t after, size_t limit) = 0;
  virtual absl::StatusOr<std::optional<Quarantined>> FindQuarantined(uint64_t id) = 0;
  virtual absl::Status ReleaseQuarantined(uint64_t id) = 0;
  virtual int64_t QuarantineEstimate() = 0;
  virtual StorageStats Stats() = 0;
  virtual absl::Status Compact() = 0;

  // Ownership, for a backend shared by several nodes: true when its queues reach the index
  // through a QueueFeed (StartFeed) rather than through Replay and Commit's `queued`.
  virtual bool Fed() const { return false; }
  // Starts feeding: takes the destinations this node should own now and feeds their entries
  // before it returns, then follows ownership changes on its own threads until StopFeed.
  virtual absl::Status StartFeed(QueueFeed& /*feed*/) { return absl::OkStatus(); }
  // Hands every owned destination over and stops feeding (a clean stop: nothing in flight).
  virtual void StopFeed() {}
  // Fed only: the other members' owned queues, each asked (a bounded wait per member).
  virtual PeerView PeerStats() { return {}; }
  // Fed only: where an entry of a queue another node owns stands in that node's index; nullopt
  // when no owner answers (none now, or gone).
  virtual std::optional<std::pair<std::string, int64_t>> PeerStanding(const std::string& /*destination*/,
                                                                     uint64_t /*seq*/, router::Level /*level*/) {
    return std::nullopt;
  }
};

}  // namespace triage::storage
