#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/statistics.h"
#include "storage/backend.h"
#include "storage/clock.h"
#include "storage/store_options.h"

namespace triage::storage {

// The records in one embedded RocksDB database on the local disk: one column family per kind
// of record, a synced WAL write per ingest group (fsync before 200), expiry by compaction
// filters. Single node: the database is the truth, and the queue index is rebuilt from it at
// start (Replay).
class RocksDbBackend : public Backend {
 public:
  // Opens or creates the database at `options.path`.
  static absl::StatusOr<std::unique_ptr<RocksDbBackend>> Open(const StoreOptions& options);
  ~RocksDbBackend() override;  // closes RocksDB

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
  std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> ConversationTeamInMemory(
      absl::string_view key, absl::Time since) override;
  absl::Status SetDestinationPause(absl::string_view destination, absl::Time until) override;
  absl::StatusOr<absl::Time> DestinationPause(absl::string_view destination) override;
  absl::Status SetManualPause(absl::string_view destination, bool paused) override;
  absl::StatusOr<bool> ManualPause(absl::string_view destination) override;
  absl::StatusOr<std::vector<Quarantined>> ListQuarantine(uint64_t after, size_t limit) override;
  absl::StatusOr<std::optional<Quarantined>> FindQuarantined(uint64_t id) override;
  absl::Status ReleaseQuarantined(uint64_t id) override;
  int64_t QuarantineEstimate() override;
  StorageStats Stats() override;
  absl::Status Compact() override;

 private:
  class ErrorListener;

  RocksDbBackend(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
                 std::vector<rocksdb::ColumnFamilyHandle*> handles);
  // `written`, reported to the error handler when it failed.
  absl::Status Written(absl::Status written);
  // The writes of one delivered lease: out of the queue, into the delivered records.
  void AddDelivered(rocksdb::WriteBatch& batch, const Lease& lease, int64_t now_ms, absl::string_view remote_ticket,
                    absl::string_view text);

  const StoreOptions options_;
  const Clock& clock_;
  std::shared_ptr<rocksdb::CompactionFilter> filter_;  // declared before db_: outlive it
  std::shared_ptr<rocksdb::CompactionFilter> origin_filter_;
  std::shared_ptr<rocksdb::CompactionFilter> quarantine_filter_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  std::shared_ptr<ErrorListener> listener_;  // background errors, and the error handler
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

  // The writer thread's (Commit), after Replay.
  uint64_t next_seq_ = 1;
  uint64_t next_quarantine_id_ = 1;
  std::atomic<int64_t> dead_letters_{0};
  std::atomic<int64_t> labels_{0};
};

}  // namespace triage::storage
