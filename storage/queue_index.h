#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "router/message.h"

namespace triage::storage {

// An owner team's entry is at SLA risk once less than this share of its SLA is left (the
// last quarter), and overdue once its deadline has passed while it is still queued.
inline constexpr double kSlaRiskShare = 0.25;

struct QueueDepth {
  std::string destination;
  std::string team;
  router::Level level;
  int64_t entries;
  int64_t oldest_enqueued_unix_ms = 0;  // QueueStats only
  int64_t sla_at_risk = 0;  // at risk, not yet overdue
  int64_t sla_overdue = 0;
};

// One queued entry as the index keeps it: 40 bytes, no heap. Its RocksDB key is derived
// (QueueKey(destination, level, seq)), not stored.
struct IndexEntry {
  int64_t enqueued_unix_ms = 0;
  int64_t due_unix_ms = 0;           // 0: ready; otherwise in back-off until then
  int64_t sla_deadline_unix_ms = 0;  // owner entries only; 0 for none
  // The entry's chain (a hash of its thread and, for an informed team, the team; 0 when its
  // thread is its own message). A collision could only make an entry wait behind another
  // thread, never lose or reorder one.
  uint64_t chain = 0;
  uint32_t team = 0;  // QueueIndex::TeamId
  router::Level level = router::Level::kLow;

  int64_t sla_risk_unix_ms() const;  // when it becomes at risk
};

// The chain of an entry (a hash, per process, never stored); 0 for an entry whose thread is
// its own message: no other entry can share it. The owner's entries of a thread are one chain
// whatever their team, like their ticket: when a follow-up moves the conversation to another
// team, its note waits for the ticket the first team's entry creates. An informed team's
// entries are a chain of their own.
uint64_t ChainOf(bool owner, absl::string_view team, absl::string_view thread, absl::string_view message_key);

// The priority queues of every destination, in memory: which entry leaves next, and the
// counts the metrics and the admin API show. Pure: no storage, no clock (times are passed
// in), no locks (the caller serialises every call). RocksDB is the truth; the index is
// rebuilt from it at start.
//
// Leasing: the best ready entry by level (urgent first) after aging (one level per
// `aging_step` waited), then arrival (seq). Entries in back-off wait aside. Entries of one
// chain (a thread's owner entries, or an informed team's) leave in arrival order: only the chain's head is ready, in back-off
// or leased; the others are blocked until it leaves.
class QueueIndex {
 public:
  explicit QueueIndex(absl::Duration aging_step) : aging_step_(aging_step) {}

  uint32_t TeamId(absl::string_view team);

  // A queued entry, ready or in back-off; the entries of a chain must come in seq order.
  void Add(const std::string& destination, uint64_t seq, IndexEntry entry);

  struct Leased {
    uint64_t seq = 0;
    IndexEntry entry;
    bool early = false;  // a probe: taken from back-off before its due time
  };
  // Leases the best entry due at `now_ms`; with `probe`, when none is due, the one due
  // soonest (early). nullopt when there is nothing to lease.
  std::optional<Leased> Lease(const std::string& destination, int64_t now_ms, bool probe);
  // InfinitePast when an entry is ready, the earliest due time of one in back-off, or
  // InfiniteFuture when none waits.
  absl::Time NextDue(const std::string& destination) const;
  // A leased entry goes back where it was: ready, or in back-off until its due time.
  absl::Status Return(const std::string& destination, uint64_t seq);
  // A leased entry goes into back-off until `due_unix_ms`.
  absl::Status Delay(const std::string& destination, uint64_t seq, int64_t due_unix_ms);
  // A leased entry left the queue (delivered or dead-lettered); the next of its chain becomes
  // its head.
  absl::Status Remove(const std::string& destination, uint64_t seq);

  // Every entry of `destination` leaves the index, leased ones too (another node took the
  // queue over). Returns how many.
  int64_t Drop(const std::string& destination);
  // How many entries of `destination` are leased.
  size_t LeasedCount(const std::string& destination) const;

  int64_t size() const { return size_; }
  // Entries per (destination, team, level), with their SLA at risk and overdue at `now_ms`,
  // from per-key deadline histograms in 10-second steps (a point in time counted up to 10 s
  // late): cheap enough for every scrape.
  std::vector<QueueDepth> Depths(int64_t now_ms) const;
  // The oldest arrival per (destination, level), team empty: the head of each ready level and
  // the entries aside (back-off, leased, blocked).
  std::vector<QueueDepth> OldestEntries() const;
  // Depths with each key's oldest arrival and exact SLA counts: walks every entry.
  std::vector<QueueDepth> QueueStats(int64_t now_ms) const;
  // Where an entry stands: in_flight, retrying, waiting_for_thread, or queued with its
  // position (1: leased next, aging aside); "unknown" for a destination the index lacks.
  std::pair<std::string, int64_t> Standing(const std::string& destination, uint64_t seq,
                                           router::Level level) const;

 private:
  // Per (destination, team, level): the entry count, and how many owner entries reach SLA
  // risk and their deadline in each 10-second step (keyed by the step's end).
  struct Depth {
    int64_t entries = 0;
    std::map<int64_t, int64_t> at_risk_from;
    std::map<int64_t, int64_t> overdue_from;
  };
  struct DestQueue {
    std::array<absl::btree_map<uint64_t, IndexEntry>, router::kLevelCount> ready;  // by seq
    absl::btree_set<std::pair<int64_t, uint64_t>> delayed;                          // (due, seq)
    absl::flat_hash_map<uint64_t, IndexEntry> waiting;  // in back-off
    absl::flat_hash_map<uint64_t, IndexEntry> leased;
    // How many entries each chain has queued; its others wait in `blocked`, in arrival order
    // in `blocked_order`.
    absl::flat_hash_map<uint64_t, uint32_t> chains;
    absl::flat_hash_map<uint64_t, IndexEntry> blocked;
    absl::btree_set<std::pair<uint64_t, uint64_t>> blocked_order;  // (chain, seq)
  };

  static void Place(DestQueue& q, uint64_t seq, IndexEntry entry);  // ready, or in back-off
  void CountDepth(const std::string& destination, const IndexEntry& entry, int64_t delta);
  absl::StatusOr<IndexEntry> TakeLeased(const std::string& destination, uint64_t seq);

  const absl::Duration aging_step_;
  std::map<std::string, DestQueue> queues_;
  std::vector<std::string> teams_;
  std::map<std::tuple<std::string, uint32_t, router::Level>, Depth> depths_;
  int64_t size_ = 0;
};

}  // namespace triage::storage
