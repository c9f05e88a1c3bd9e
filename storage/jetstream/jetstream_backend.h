#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "storage/backend.h"
#include "storage/clock.h"
#include "storage/jetstream/nats.h"
#include "storage/jetstream/ownership.h"
#include "storage/store_options.h"

namespace triage::storage {

struct JetStreamOptions {
  jetstream::ConnectOptions connect;
  int replicas = 3;  // of every stream and bucket: acknowledged means stored on a majority
  // Every stream, subject and bucket name starts with it, so that deployments can share a
  // cluster. [A-Za-z0-9_-] only.
  std::string prefix = "TRIAGE";
  // This node's name among the members ([A-Za-z0-9_-]); empty: the host name, the pid and a
  // random part (a restarted node is a new member).
  std::string node;
  jetstream::LeaseTiming leases;

  absl::Status Validate() const;
};

// A destination name that can be a stream and subject token: [A-Za-z0-9_-], 1 to 64 bytes.
absl::Status ValidJetStreamName(absl::string_view name, absl::string_view what);

// The records in NATS JetStream streams and key-value buckets, replicated by the cluster
// (R3: acknowledged = on 2 of 3 servers, in their page cache; 2.9 fsyncs on a timer). Layout
// (P = the prefix):
// - stream P_Q_<destination>: one message per queue entry (EncodeEntry), seq = the entry's;
// - stream P_SEEN: one subject per message key (P.seen.<key>), one message each, kept for the
//   dedup window: the dedup index and the message record, with its deliveries (destination and
//   seq); a publish names the record it replaces (none, or one past the window), so that of two
//   nodes storing one message at once, one is refused and counts it as a duplicate;
// - stream P_DEAD: dead letters (P.dead.<destination>.<seq>);
// - stream P_QUARANTINE: unreadable requests, kept for the retention (id = seq);
// - buckets P_retry (attempts, due time and last error of entries that failed), P_delivered
//   and P_tickets (for the dedup window), P_origins (the ticket origin window), P_conv,
//   P_dest (pauses), P_labels;
// - buckets P_nodes (the live members) and P_leases (one key per owned destination), both
//   with the lease TTL (ownership.h).
//
// Ingest (Commit) is whole-or-retry, not whole-or-nothing: entries are published first, then
// the SEEN records; a request whose publishes did not all succeed is answered Unavailable and
// its retry completes it (entries carry a Nats-Msg-Id, so a retry within 10 minutes stores
// nothing twice).
//
// Every node ingests; each destination's queue has one owner at a time (ownership.h), which
// replays its stream when it takes it and then follows it (an ordered consumer), feeding the
// store's index (QueueFeed) with every entry, whichever node stored it.
class JetStreamBackend : public Backend {
 public:
  // Connects, and creates or updates the streams and buckets.
  static absl::StatusOr<std::unique_ptr<JetStreamBackend>> Open(const JetStreamOptions& jetstream,
                                                                const StoreOptions& options);
  ~JetStreamBackend() override;

  void SetErrorHandler(std::function<void(const absl::Status&)> handler) override;
  absl::Status Resume() override;
  absl::Status Replay(absl::Time now, absl::FunctionRef<void(const QueuedEntry&)> queued) override;
  absl::Status Commit(absl::Span<IngestRequest> group, absl::Span<IngestResult> results,
                      std::vector<QueuedEntry>& queued) override;
  absl::StatusOr<std::optional<QueueEntry>> ReadEntry(absl::string_view destination, router::Level level,
                                                      uint64_t seq) override;
  absl::Status Delivered(absl::Span<const Lease* const> leases, absl::Time now) override;
  absl::Status Delivered(const Lease& lease, absl::Time now, absl::string_view remote_ticket, bool created,
                         absl::string_view text) override;
  absl::Status Update(const Lease& lease, const QueueEntry& entry, bool sync) override;
  absl::Status MoveToDead(const Lease& lease, const QueueEntry& entry) override;
  absl::StatusOr<std::vector<DeadEntry>> Requeue(const std::string& destination,
                                                 std::optional<uint64_t> seq) override;
  std::vector<DeadEntry> DeadLetters(absl::string_view destination, size_t limit) override;
  int64_t DeadLetterCount() override { return dead_letters_.load(); }
  std::vector<MessageDelivery> Deliveries(absl::string_view message_key) override;
  absl::StatusOr<std::string> GetMessage(absl::string_view key) override;
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(const Lease& lease) override;
  absl::StatusOr<std::optional<ThreadTicket>> FindThreadTicket(absl::string_view destination, bool owner,
                                                               absl::string_view team,
                                                               absl::string_view thread) override;
  absl::StatusOr<TicketOrigin> FindTicketOrigin(absl::string_view destination, absl::string_view ticket) override;
  absl::Status PutLabel(absl::string_view message_key, absl::string_view record) override;
  absl::StatusOr<std::optional<std::string>> Label(absl::string_view message_key) override;
  absl::StatusOr<std::vector<std::string>> Labels(absl::string_view after, size_t limit, std::string* last) override;
  int64_t LabelCount() override { return labels_.load(); }
  absl::StatusOr<std::optional<router::ConversationOwner>> ConversationTeam(absl::string_view key,
                                                                          absl::Time since) override;
  // Always "needs the network": nullopt.
  std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> ConversationTeamInMemory(
      absl::string_view key, absl::Time since) override;
  absl::Status SetDestinationPause(absl::string_view destination, absl::Time until) override;
  absl::StatusOr<absl::Time> DestinationPause(absl::string_view destination) override;
  absl::Status SetManualPause(absl::string_view destination, bool paused) override;
  absl::StatusOr<bool> ManualPause(absl::string_view destination) override;
  absl::StatusOr<std::vector<Quarantined>> ListQuarantine(uint64_t after, size_t limit) override;
  absl::StatusOr<std::optional<Quarantined>> FindQuarantined(uint64_t id) override;
  absl::Status ReleaseQuarantined(uint64_t id) override;
  int64_t QuarantineEstimate() override { return quarantined_.load(); }
  StorageStats Stats() override { return {}; }  // RocksDB's figures; the servers export their own
  absl::Status Compact() override { return absl::OkStatus(); }  // expiry is the streams' MaxAge

  bool Fed() const override { return true; }
  absl::Status StartFeed(QueueFeed& feed) override;
  void StopFeed() override;
  // Each member asked on "<prefix>.ask.<node>" (a member gone answers "no responders" at once;
  // one that does not answer within the wait is listed in `unanswered`).
  PeerView PeerStats() override;
  // The owner named by the queue's lease, asked the same way.
  std::optional<std::pair<std::string, int64_t>> PeerStanding(const std::string& destination, uint64_t seq,
                                                             router::Level level) override;

  const std::string& node() const { return node_; }
  // The destinations this node owns now.
  std::vector<std::string> Owned();

 private:
  JetStreamBackend(const JetStreamOptions& jetstream, const StoreOptions& options,
                   std::unique_ptr<jetstream::Client> client);
  absl::Status CreateStreamsAndBuckets();
  // The queue stream of `destination`, created (or its config updated) on its first use here
  // (`*created`). `quick` (a write answering a webhook): a stream the servers listed is used as
  // it is, and a creation waits the publish timeout at most.
  absl::StatusOr<std::string> QueueStream(absl::string_view destination, bool* created = nullptr,
                                          bool quick = false);
  // The queue streams the servers listed: they exist, and a write to them creates nothing.
  void Listed(absl::Span<const std::string> streams);
  // `status`, reported to the error handler when it is Unavailable.
  absl::Status Reported(absl::Status status);
  absl::StatusOr<std::optional<std::string>> GetValue(const std::string& bucket, const std::string& key);
  // The entry with its retry record (attempts, due time, last error) applied.
  absl::Status ApplyRetry(absl::string_view destination, uint64_t seq, QueueEntry& entry);
  // The entry as the queue stream shows it now (nullopt: not shown, which alone proves nothing).
  absl::StatusOr<std::optional<QueueEntry>> QueueHolds(absl::string_view destination, uint64_t seq);
  // The subject of an entry's dead letter in the DEAD stream.
  std::string DeadSubject(absl::string_view destination, uint64_t seq) const;
  // Whether the entry was settled: its delivery or its dead letter is recorded (each is written
  // before the entry's delete).
  absl::StatusOr<bool> Settled(absl::string_view destination, uint64_t seq);
  // Out of the queue (and its retry record), once recorded elsewhere.
  absl::Status RemoveEntry(const Lease& lease);
  absl::StatusOr<std::optional<ThreadTicket>> ReadTicket(const std::string& key);
  // A requeued entry's new seq, in its message's record (what Deliveries reads).
  absl::Status MovedInRecord(absl::string_view message_key, absl::string_view destination, uint64_t from,
                             uint64_t to);
  // The counters: dead letters, labels, quarantined requests, at the start and at every tick.
  // (The retry keys are loaded by Replay for every queue, by TakeOver for one.)
  absl::Status LoadCounts();
  // This node changed a counter by `by`.
  void Count(std::atomic<int64_t>& counter, int64_t by);
  // The queue of `destination` as a replay finds it (entries already dead-lettered are deleted
  // from it): each entry to `queued`; `*next` is the seq after the last one read.
  absl::Status ReplayQueue(const std::string& destination, int64_t now_ms,
                           absl::FunctionRef<void(const QueuedEntry&)> queued, uint64_t* next);

  // Ownership (jetstream_ownership.cc). Tick: a heartbeat, then every queue's lease taken,
  // renewed, handed over or given up.
  // Where feeding an owned queue stands, shared by its follower (a cnats thread) and the tick's
  // direct reads when the follower stalls.
  struct FeedCursor {
    std::mutex mu;
    uint64_t next = 0;          // the next seq to feed
    absl::Time progressed;      // when `next` last moved (or the stream had nothing more)
  };
  struct Owning {
    uint64_t revision = 0;  // of the lease key
    absl::Time renewed;
    uint64_t generation = 0;
    std::unique_ptr<jetstream::Following> following;
    std::shared_ptr<FeedCursor> cursor;
    bool releasing = false;
    bool fenced = false;  // past the fence without a renewal (logged once)
  };
  // Feeds the entry at `seq` unless fed already. Under cursor.mu.
  void FeedAt(FeedCursor& cursor, const std::string& destination, uint64_t generation, uint64_t seq,
              absl::string_view data);
  // Under own_mu_: a follower that brought nothing for a while though the stream holds more
  // (its consumer is re-created after a leader change, which needs the servers' meta leader):
  // the entries are read by seq from the stream's leader instead, up to the first one that is
  // neither there nor proven settled.
  void CatchUp(const std::string& destination, Owning& owning, absl::Time now);
  // One round: renewals, heartbeat, members, catch-up, handovers, takeovers, counts. `budgeted`:
  // the steps after the heartbeat wait for the next round once this one lasted two ticks.
  void Tick(bool budgeted);
  // Tick's first step: renews every lease held (or drops the queue whose lease was taken).
  void Renew();
  // Under own_mu_: takes the lease of `destination` if free, replays its queue and follows it.
  void Acquire(const std::string& destination);
  // Under own_mu_: a lease this node held ran out unrenewed (its stream electing a leader for
  // longer than the TTL). When free, it is taken again (its new revision), and Renew keeps the
  // queue as it is: index, follower and leases in flight. A node that held it meanwhile settled
  // entries in the backend (a lease of one finds it settled) and may have written retry records
  // (read again here). Nullopt when another node holds it, or the retry records cannot be read.
  std::optional<uint64_t> Retake(const std::string& destination);
  // The retry records of `destination`'s queue (its last owner may have written some).
  absl::Status LoadRetryKeys(const std::string& destination);
  // Under own_mu_, holding the lease at `revision`: feeds the queue's entries from its start,
  // then follows it. On failure the queue is dropped and the lease given back.
  void TakeOver(const std::string& destination, uint64_t revision, absl::Time renewed);
  // Under own_mu_: stops following and drops the queue from the index.
  void Drop(const std::string& destination);
  // A queue stream was just created here: its owner-to-be takes it at once when that is this
  // node.
  void Discovered(const std::string& destination);
  void Log(int severity, absl::string_view line) const;
  // Another node's question about this one's index ("stats", or "standing" with a place).
  std::string Answer(absl::string_view question);
  std::string AskSubject(absl::string_view node) const;

  const JetStreamOptions jetstream_;
  const StoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<jetstream::Client> client_;
  const std::string seen_stream_, dead_stream_, quarantine_stream_;
  const std::string retry_bucket_, delivered_bucket_, tickets_bucket_, origins_bucket_, conv_bucket_, dest_bucket_,
      labels_bucket_;

  std::mutex mu_;  // guards streams_, listed_, retrying_ and handler_
  std::set<std::string, std::less<>> streams_;  // queue streams made or updated to this node's spec
  std::set<std::string, std::less<>> listed_;   // queue streams the servers listed (Listed)
  // The entries ("destination.seq") with a retry record: only those read one. This node owns
  // every queue (one node per prefix), so it knows them all after Replay.
  absl::flat_hash_set<std::string> retrying_;
  std::function<void(const absl::Status&)> handler_;

  const std::string nodes_bucket_, leases_bucket_;
  const std::string node_;
  QueueFeed* feed_ = nullptr;  // set by StartFeed
  std::mutex own_mu_;          // guards owning_, members_, generations_
  std::map<std::string, Owning> owning_;
  std::vector<std::string> members_;  // as of the last tick
  uint64_t generations_ = 0;
  std::mutex tick_mu_;  // guards stopping_
  std::condition_variable tick_cv_;
  bool stopping_ = false;
  std::thread ticker_;
  std::unique_ptr<jetstream::Following> serving_;  // Answer, from StartFeed to StopFeed

  std::atomic<int64_t> dead_letters_{0};
  std::atomic<int64_t> labels_{0};
  std::atomic<int64_t> quarantined_{0};
  std::mutex counts_mu_;         // orders this node's changes with a load of the cluster's counts
  uint64_t count_changes_ = 0;  // this node's changes so far (under counts_mu_)
};

}  // namespace triage::storage
