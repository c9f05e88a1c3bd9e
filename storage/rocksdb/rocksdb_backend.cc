#include "storage/rocksdb/rocksdb_backend.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/snapshot.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/status.h"

namespace triage::storage {
namespace {

constexpr char kNextSeqKey[] = "next_seq";
// Set once the by_message index covers every queued and dead entry (databases written before
// the index get it on their first open).
constexpr char kByMessageBuiltKey[] = "by_message_built";
constexpr char kMessagesCf[] = "messages";
constexpr char kQueueCf[] = "queue";
constexpr char kDeadCf[] = "dead";
constexpr char kMetaCf[] = "meta";
constexpr char kConversationsCf[] = "conversations";
constexpr char kTicketsCf[] = "tickets";
constexpr char kByMessageCf[] = "by_message";
// destination '\0' remote ticket -> (creation time, message key '\0' ticket JSON).
constexpr char kTicketOriginsCf[] = "ticket_origins";
// message key -> label record (JSON).
constexpr char kLabelsCf[] = "labels";
// message key '\0' queue key -> (delivery time, attempts '\0' team '\0' role '\0' remote ticket):
// what became of an acknowledged delivery, kept as long as the message's dedup record.
constexpr char kDeliveredCf[] = "delivered";
// id:u64 big-endian -> QuarantineRecord (EncodeQuarantine), dropped after the retention.
constexpr char kQuarantineCf[] = "quarantine";

// by_message: message key '\0' queue key -> 'q' (queued) or 'd' (dead letter). Lets the admin
// API find the deliveries of one message without a scan.
std::string ByMessageKey(absl::string_view message_key, absl::string_view queue_key) {
  return JoinKey(message_key, queue_key);
}

// RocksDB's info log, handed to the caller's function instead of a LOG file on the data disk.
class CallbackLogger : public rocksdb::Logger {
 public:
  explicit CallbackLogger(std::function<void(int, absl::string_view)> log)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), log_(std::move(log)) {}
  using rocksdb::Logger::Logv;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (!log_ || level < GetInfoLogLevel()) return;
    char line[1024];
    const int n = std::vsnprintf(line, sizeof(line), format, ap);
    if (n < 0) return;
    log_(static_cast<int>(level), absl::string_view(line, std::min<size_t>(n, sizeof(line) - 1)));
  }

 private:
  std::function<void(int, absl::string_view)> log_;
};

// Drops message records older than the dedup window during compaction, so expiry never needs
// a scan. Periodic compaction (daily) makes sure old files are visited even without writes.
class DedupExpiryFilter : public rocksdb::CompactionFilter {
 public:
  DedupExpiryFilter(rocksdb::Env* env, absl::Duration window)
      : env_(env), window_ms_(absl::ToInt64Milliseconds(window)) {}

  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const std::optional<int64_t> received = MessageRecordTime({value.data(), value.size()});
    const int64_t now_ms = static_cast<int64_t>(env_->NowMicros() / 1000);
    return received && *received < now_ms - window_ms_;
  }
  const char* Name() const override { return "triage.DedupExpiryFilter"; }

 private:
  rocksdb::Env* env_;
  int64_t window_ms_;
};

absl::string_view Sv(const rocksdb::Slice& slice) { return {slice.data(), slice.size()}; }

std::string ChainKey(absl::string_view team, absl::string_view thread) {
  return JoinKey(team, thread);
}

// tickets: destination '\0' team '\0' thread -> (last delivery time, ThreadTicket). The
// owner's ticket has an empty team (before, it had the owner team's name: still read).
std::string TicketKey(absl::string_view destination, absl::string_view chain) {
  return JoinKey(destination, chain);
}
std::string ThreadTicketKey(absl::string_view destination, bool owner, absl::string_view team,
                            absl::string_view thread) {
  return TicketKey(destination, ChainKey(owner ? "" : team, thread));
}

// The record of a lease's thread at its destination: its ticket, or for a reply the last
// acknowledgement of the conversation (under a team name no config can write, so that a
// destination taking both never mistakes one for the other).
constexpr absl::string_view kReplyChain = "\x01reply";
std::string ThreadTicketKey(const Lease& lease) {
  if (lease.entry.reply) return ThreadTicketKey(lease.destination, false, kReplyChain, lease.entry.thread);
  return ThreadTicketKey(lease.destination, lease.entry.owner, lease.entry.team, lease.entry.thread);
}

std::string EncodeSeq(uint64_t seq) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((seq >> (8 * i)) & 0xff);
  return out;
}

uint64_t DecodeSeq(absl::string_view in) {
  uint64_t seq = 0;
  for (size_t i = 0; i < std::min<size_t>(8, in.size()); ++i) {
    seq |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  }
  return seq;
}

// Keys that sort in number order (quarantine ids).
std::string EncodeSeqBigEndian(uint64_t seq) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((seq >> (8 * (7 - i))) & 0xff);
  return out;
}

uint64_t DecodeSeqBigEndian(absl::string_view in) {
  uint64_t seq = 0;
  for (size_t i = 0; i < std::min<size_t>(8, in.size()); ++i) {
    seq = (seq << 8) | static_cast<uint8_t>(in[i]);
  }
  return seq;
}

// A conversation record read with `s`: its owner when it is recent enough.
absl::StatusOr<std::optional<router::ConversationOwner>> ConversationRecord(const rocksdb::Status& s,
                                                                           const std::string& value,
                                                                           absl::Time since) {
  if (s.IsNotFound()) return std::optional<router::ConversationOwner>();
  if (!s.ok()) return ToAbsl(s);
  const std::optional<int64_t> when = MessageRecordTime(value);
  if (!when || *when < absl::ToUnixMillis(since)) return std::optional<router::ConversationOwner>();
  return std::optional<router::ConversationOwner>(DecodeConversationOwner(absl::string_view(value).substr(8)));
}

std::string PauseKey(absl::string_view destination) {
  return JoinKey("pause", destination);
}
std::string ManualPauseKey(absl::string_view destination) {
  return JoinKey("manual_pause", destination);
}

}  // namespace

// Background errors (a flush or compaction that hit a full disk), and failed foreground writes,
// go to the error handler while one is set.
class RocksDbBackend::ErrorListener : public rocksdb::EventListener {
 public:
  void Set(std::function<void(const absl::Status&)> handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }
  void Report(const absl::Status& error) {
    std::lock_guard lock(mu_);
    if (handler_) handler_(error);
  }
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && !error->ok()) Report(ToAbsl(*error));
  }

 private:
  std::mutex mu_;
  std::function<void(const absl::Status&)> handler_;
};

absl::StatusOr<std::unique_ptr<RocksDbBackend>> RocksDbBackend::Open(const StoreOptions& options) {
  rocksdb::Env* env = options.env != nullptr ? options.env : rocksdb::Env::Default();
  std::error_code mkdir_error;
  std::filesystem::create_directories(options.path, mkdir_error);
  if (mkdir_error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", options.path, ": ", mkdir_error.message()));
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.env = env;
  db_options.max_background_jobs = 2;
  db_options.info_log = std::make_shared<CallbackLogger>(options.log);
  // After ENOSPC, RocksDB's own SstFileManager (the default one) resumes the database once a
  // memtable's worth of space (write_buffer_size, below) is free, checking every 5 seconds,
  // and refuses a manual Resume() meanwhile. Other errors (EIO on a write) are resumed by the
  // store's writer thread (Resume).
  auto listener = std::make_shared<ErrorListener>();
  db_options.listeners.push_back(listener);
  // Tickers and histograms for the metrics (WAL syncs and their time, stalls).
  std::shared_ptr<rocksdb::Statistics> statistics = rocksdb::CreateDBStatistics();
  db_options.statistics = statistics;

  // Memtables of 8 MiB (not 64): after ENOSPC, RocksDB resumes once one memtable's worth of
  // space is free again, so a few megabytes freed are enough; its log preallocates as much.
  rocksdb::ColumnFamilyOptions base;
  base.write_buffer_size = 8 << 20;
  rocksdb::ColumnFamilyOptions messages_options = base;
  // Point lookups by whole key (dedup at every ingest, conversations, tickets), most of them
  // for keys that are not there: a Bloom filter in each table file and in the memtable answers
  // those without searching, however many files 8 days of history make.
  rocksdb::BlockBasedTableOptions lookups;
  lookups.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  messages_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(lookups));
  messages_options.memtable_prefix_bloom_size_ratio = 0.05;
  messages_options.memtable_whole_key_filtering = true;
  // RocksDB borrows the filter: the backend owns it and outlives the DB handle.
  auto filter = std::make_shared<DedupExpiryFilter>(env, options.dedup_window);
  messages_options.compaction_filter = filter.get();
  messages_options.periodic_compaction_seconds = 24 * 3600;

  rocksdb::ColumnFamilyOptions origins_options = base;
  auto origin_filter = std::make_shared<DedupExpiryFilter>(env, options.ticket_origin_window);
  origins_options.compaction_filter = origin_filter.get();
  origins_options.periodic_compaction_seconds = 24 * 3600;

  rocksdb::ColumnFamilyOptions quarantine_options = base;
  auto quarantine_filter = std::make_shared<DedupExpiryFilter>(env, options.quarantine_retention);
  quarantine_options.compaction_filter = quarantine_filter.get();
  quarantine_options.periodic_compaction_seconds = 24 * 3600;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, base},
      {kMessagesCf, messages_options},
      {kQueueCf, base},
      {kDeadCf, base},
      {kMetaCf, base},
      {kConversationsCf, messages_options},  // same record layout, same expiry
      {kTicketsCf, messages_options},        // idem, counted from the last delivery
      {kByMessageCf, base},
      {kTicketOriginsCf, origins_options},
      {kLabelsCf, base},
      {kDeliveredCf, messages_options},  // same record layout, same expiry
      {kQuarantineCf, quarantine_options},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw); !s.ok()) {
    return ToAbsl(s);
  }
  std::unique_ptr<RocksDbBackend> backend(
      new RocksDbBackend(options, std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
  backend->listener_ = std::move(listener);
  backend->filter_ = std::move(filter);
  backend->origin_filter_ = std::move(origin_filter);
  backend->quarantine_filter_ = std::move(quarantine_filter);
  backend->statistics_ = std::move(statistics);
  return backend;
}

RocksDbBackend::RocksDbBackend(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()),
      db_(std::move(db)),
      handles_(std::move(handles)),
      messages_cf_(handles_[1]),
      queue_cf_(handles_[2]),
      dead_cf_(handles_[3]),
      meta_cf_(handles_[4]),
      conversations_cf_(handles_[5]),
      tickets_cf_(handles_[6]),
      by_message_cf_(handles_[7]),
      ticket_origins_cf_(handles_[8]),
      labels_cf_(handles_[9]),
      delivered_cf_(handles_[10]),
      quarantine_cf_(handles_[11]) {}

RocksDbBackend::~RocksDbBackend() {
  SetErrorHandler(nullptr);
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

void RocksDbBackend::SetErrorHandler(std::function<void(const absl::Status&)> handler) {
  listener_->Set(std::move(handler));
}

absl::Status RocksDbBackend::Written(absl::Status written) {
  if (!written.ok()) listener_->Report(written);
  return written;
}

absl::Status RocksDbBackend::Resume() {
  if (const rocksdb::Status resumed = db_->Resume(); !resumed.ok()) {
    return absl::UnavailableError(absl::StrCat("Resume failed: ", resumed.ToString()));
  }
  // Resume succeeds on a database that never stopped (a failed foreground write): a synced
  // write proves the disk takes data again.
  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (const rocksdb::Status probe = db_->Put(synced, meta_cf_, "probe", "1"); !probe.ok()) {
    return absl::UnavailableError(absl::StrCat("probe failed: ", probe.ToString()));
  }
  return absl::OkStatus();
}

absl::Status RocksDbBackend::Replay(absl::Time now, absl::FunctionRef<void(const QueuedEntry&)> queued) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kNextSeqKey, &value);
  if (!s.ok() && !s.IsNotFound()) return ToAbsl(s);
  next_seq_ = s.ok() ? DecodeSeq(value) : 1;
  {
    // Quarantine ids go on from the last one kept.
    std::unique_ptr<rocksdb::Iterator> last(db_->NewIterator(rocksdb::ReadOptions(), quarantine_cf_));
    last->SeekToLast();
    if (last->Valid()) next_quarantine_id_ = DecodeSeqBigEndian(Sv(last->key())) + 1;
    if (!last->status().ok()) return ToAbsl(last->status());
  }

  std::string marker;
  const rocksdb::Status built = db_->Get(rocksdb::ReadOptions(), meta_cf_, kByMessageBuiltKey, &marker);
  if (!built.ok() && !built.IsNotFound()) return ToAbsl(built);
  const bool build_index = built.IsNotFound();
  rocksdb::WriteBatch backfill;
  auto index = [&](absl::string_view message_key, const rocksdb::Slice& queue_key, const char* state) {
    if (!build_index) return rocksdb::Status::OK();
    backfill.Put(by_message_cf_, ByMessageKey(message_key, Sv(queue_key)), state);
    if (backfill.Count() < 10'000) return rocksdb::Status::OK();
    const rocksdb::Status written = db_->Write(rocksdb::WriteOptions(), &backfill);
    backfill.Clear();
    return written;
  };

  const int64_t now_ms = absl::ToUnixMillis(now);
  // One sequential pass: keys sort by destination, then level, then seq, and chains must be
  // rebuilt in arrival order, so each destination's levels are merged by seq (one iterator per
  // level).
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;  // read once: keep the block cache for what is read again
  scan.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> destinations(db_->NewIterator(scan, queue_cf_));
  destinations->SeekToFirst();
  while (destinations->Valid()) {
    const std::optional<DecodedQueueKey> first = DecodeQueueKey(Sv(destinations->key()));
    if (!first) return absl::DataLossError("an undecodable queue key; the database is damaged");
    const std::string destination = first->destination;
    std::array<std::unique_ptr<rocksdb::Iterator>, router::kLevelCount> levels;
    std::array<std::string, router::kLevelCount> prefixes;
    for (int level = 0; level < router::kLevelCount; ++level) {
      prefixes[level] = JoinKey(destination, std::string(1, static_cast<char>(level)));
      levels[level].reset(db_->NewIterator(scan, queue_cf_));
      levels[level]->Seek(prefixes[level]);
    }
    for (;;) {
      int next = -1;
      uint64_t next_seq = 0;
      std::optional<DecodedQueueKey> key;
      for (int level = 0; level < router::kLevelCount; ++level) {
        rocksdb::Iterator& it = *levels[level];
        if (!it.status().ok()) return ToAbsl(it.status());
        if (!it.Valid() || !absl::StartsWith(Sv(it.key()), prefixes[level])) continue;
        std::optional<DecodedQueueKey> candidate = DecodeQueueKey(Sv(it.key()));
        if (!candidate) return absl::DataLossError("an undecodable queue key; the database is damaged");
        if (next < 0 || candidate->seq < next_seq) {
          next = level;
          next_seq = candidate->seq;
          key = std::move(candidate);
        }
      }
      if (next < 0) break;
      rocksdb::Iterator& it = *levels[next];
      const std::optional<QueueEntryView> entry = DecodeEntryView(Sv(it.value()));
      if (!entry) {
        return absl::DataLossError(absl::StrCat("undecodable queue record of ", it.key().size(),
                                                " key bytes; the database is damaged"));
      }
      next_seq_ = std::max(next_seq_, key->seq + 1);
      if (auto indexed = index(entry->message_key, it.key(), "q"); !indexed.ok()) return ToAbsl(indexed);
      queued(QueuedEntry{destination, key->seq, entry->team, IndexEntryOf(*entry, key->level, now_ms)});
      it.Next();
    }
    destinations->Seek(destination + '\x01');  // past every key of this destination
  }
  if (!destinations->status().ok()) return ToAbsl(destinations->status());

  int64_t dead_letters = 0;
  std::unique_ptr<rocksdb::Iterator> dead(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  for (dead->SeekToFirst(); dead->Valid(); dead->Next()) {
    if (const auto key = DecodeQueueKey(Sv(dead->key()))) {
      next_seq_ = std::max(next_seq_, key->seq + 1);
    }
    if (build_index) {
      if (const std::optional<QueueEntry> entry = DecodeEntry(Sv(dead->value()))) {
        if (auto indexed = index(entry->message_key, dead->key(), "d"); !indexed.ok()) return ToAbsl(indexed);
      }
    }
    ++dead_letters;
  }
  if (!dead->status().ok()) return ToAbsl(dead->status());
  dead_letters_ = dead_letters;
  int64_t labels = 0;
  std::unique_ptr<rocksdb::Iterator> label(db_->NewIterator(rocksdb::ReadOptions(), labels_cf_));
  for (label->SeekToFirst(); label->Valid(); label->Next()) ++labels;
  if (!label->status().ok()) return ToAbsl(label->status());
  labels_ = labels;
  if (!build_index) return absl::OkStatus();
  backfill.Put(meta_cf_, kByMessageBuiltKey, "1");
  rocksdb::WriteOptions synced;
  synced.sync = true;
  return ToAbsl(db_->Write(synced, &backfill));
}

absl::Status RocksDbBackend::Commit(absl::Span<IngestRequest> group, absl::Span<IngestResult> results,
                                    std::vector<QueuedEntry>& queued) {
  rocksdb::WriteBatch batch;
  absl::flat_hash_set<absl::string_view> keys_in_group;
  uint64_t seq = next_seq_;
  uint64_t quarantine_id = next_quarantine_id_;
  const size_t queued_before = queued.size();
  const rocksdb::ReadOptions read_options;
  std::string existing;

  for (size_t i = 0; i < group.size(); ++i) {
    IngestRequest& request = group[i];
    const int64_t received_ms = absl::ToUnixMillis(request.received_at);
    const int64_t window_start = received_ms - absl::ToInt64Milliseconds(options_.dedup_window);
    // Decide every message of the request before writing any, so a failed lookup leaves the
    // request out entirely.
    std::vector<bool> is_new(request.messages.size(), false);
    for (size_t m = 0; m < request.messages.size() && results[i].status.ok(); ++m) {
      const std::string& key = request.messages[m].key;
      if (keys_in_group.contains(key)) continue;
      const rocksdb::Status s = db_->Get(read_options, messages_cf_, key, &existing);
      if (s.ok()) {
        const std::optional<int64_t> seen = MessageRecordTime(existing);
        is_new[m] = !seen || *seen < window_start;
      } else if (s.IsNotFound()) {
        is_new[m] = true;
      } else {
        results[i].status = ToAbsl(s);
      }
      if (is_new[m]) keys_in_group.insert(key);
    }
    if (!results[i].status.ok()) {
      for (size_t m = 0; m < request.messages.size(); ++m) {
        if (is_new[m]) keys_in_group.erase(request.messages[m].key);
      }
      continue;
    }
    if (request.quarantine) {
      request.quarantine->received_unix_ms = received_ms;
      results[i].quarantine_id = quarantine_id;
      batch.Put(quarantine_cf_, EncodeSeqBigEndian(quarantine_id++), EncodeQuarantine(*request.quarantine));
    }
    results[i].duplicate.resize(request.messages.size());
    for (size_t m = 0; m < request.messages.size(); ++m) {
      NewMessage& message = request.messages[m];
      results[i].duplicate[m] = !is_new[m];
      if (!is_new[m]) {
        ++results[i].duplicates;
        continue;
      }
      ++results[i].stored;
      batch.Put(messages_cf_, message.key, EncodeMessageRecord(received_ms, message.ticket_json));
      if (!message.conversation_key.empty()) {
        batch.Put(conversations_cf_, message.conversation_key,
                  EncodeMessageRecord(received_ms, EncodeConversationOwner(message.conversation)));
      }
      for (const Delivery& delivery : message.deliveries) {
        QueueEntry entry = EntryOf(message, delivery, received_ms);
        const std::string queue_key = QueueKey(delivery.destination, message.level, seq);
        batch.Put(queue_cf_, queue_key, EncodeEntry(entry));
        batch.Put(by_message_cf_, ByMessageKey(message.key, queue_key), "q");
        queued.push_back({delivery.destination, seq, delivery.team, IndexEntryOf(entry, message.level, received_ms)});
        ++seq;
      }
    }
  }
  batch.Put(meta_cf_, kNextSeqKey, EncodeSeq(seq));

  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // the one fsync this whole group shares
  const absl::Status written = Written(ToAbsl(db_->Write(write_options, &batch)));
  if (!written.ok()) {
    queued.resize(queued_before);
    return written;
  }
  next_seq_ = seq;
  next_quarantine_id_ = quarantine_id;
  return written;
}

absl::StatusOr<std::optional<QueueEntry>> RocksDbBackend::ReadEntry(absl::string_view destination,
                                                                    router::Level level, uint64_t seq) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), queue_cf_, QueueKey(destination, level, seq), &value);
  if (s.IsNotFound()) return std::optional<QueueEntry>();
  if (!s.ok()) return ToAbsl(s);
  std::optional<QueueEntry> entry = DecodeEntry(value);
  if (!entry) return absl::DataLossError(absl::StrCat("an undecodable queue record of ", destination));
  return entry;
}

void RocksDbBackend::AddDelivered(rocksdb::WriteBatch& batch, const Lease& lease, int64_t now_ms,
                         absl::string_view remote_ticket, absl::string_view text) {
  const std::string key = QueueKey(lease.destination, lease.entry.level, lease.seq);
  batch.Delete(queue_cf_, key);
  const std::string by_message = ByMessageKey(lease.entry.message_key, key);
  batch.Delete(by_message_cf_, by_message);
  batch.Put(delivered_cf_, by_message,
            EncodeMessageRecord(now_ms, EncodeDelivered({lease.entry.attempts + 1, lease.entry.team, lease.entry.owner,
                                                         std::string(remote_ticket), lease.entry.reply,
                                                         std::string(text)})));
}

absl::Status RocksDbBackend::Delivered(absl::Span<const Lease* const> leases, absl::Time now) {
  rocksdb::WriteBatch batch;
  const int64_t now_ms = absl::ToUnixMillis(now);
  for (const Lease* lease : leases) AddDelivered(batch, *lease, now_ms, {}, {});
  // Not synced: a lost ack means one redelivery with the same idempotency key, never a loss.
  return Written(ToAbsl(db_->Write(rocksdb::WriteOptions(), &batch)));
}

absl::Status RocksDbBackend::Delivered(const Lease& lease, absl::Time now, absl::string_view remote_ticket,
                                       bool created, absl::string_view text) {
  rocksdb::WriteBatch batch;
  const int64_t now_ms = absl::ToUnixMillis(now);
  AddDelivered(batch, lease, now_ms, remote_ticket, text);
  if (remote_ticket.empty()) return Written(ToAbsl(db_->Write(rocksdb::WriteOptions(), &batch)));
  const ThreadTicket filed{std::string(remote_ticket), lease.entry.level, lease.entry.team};
  batch.Put(tickets_cf_, ThreadTicketKey(lease), EncodeMessageRecord(now_ms, EncodeThreadTicket(filed)));
  if (created) {
    batch.Put(ticket_origins_cf_, JoinKey(lease.destination, remote_ticket),
              EncodeMessageRecord(now_ms, JoinKey(lease.entry.message_key, lease.entry.ticket_json)));
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // the only proof that this ticket exists, or was raised
  return Written(ToAbsl(db_->Write(write_options, &batch)));
}

absl::Status RocksDbBackend::Update(const Lease& lease, const QueueEntry& entry, bool sync) {
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  return Written(ToAbsl(db_->Put(write_options, queue_cf_, QueueKey(lease.destination, entry.level, lease.seq),
                                 EncodeEntry(entry))));
}

absl::Status RocksDbBackend::MoveToDead(const Lease& lease, const QueueEntry& entry) {
  const std::string key = QueueKey(lease.destination, entry.level, lease.seq);
  rocksdb::WriteBatch batch;
  batch.Delete(queue_cf_, key);
  batch.Put(dead_cf_, key, EncodeEntry(entry));
  batch.Put(by_message_cf_, ByMessageKey(entry.message_key, key), "d");
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // a dead letter is the only trace left of the message
  const absl::Status written = Written(ToAbsl(db_->Write(write_options, &batch)));
  if (written.ok()) ++dead_letters_;
  return written;
}

absl::StatusOr<std::optional<ThreadTicket>> RocksDbBackend::FindThreadTicket(const Lease& lease) {
  if (lease.entry.reply) return FindThreadTicket(lease.destination, false, kReplyChain, lease.entry.thread);
  absl::StatusOr<std::optional<ThreadTicket>> found =
      FindThreadTicket(lease.destination, lease.entry.owner, lease.entry.team, lease.entry.thread);
  if (found.ok() && !found->has_value() && lease.entry.owner) {
    // Recorded before the owner's ticket was the thread's: under the owner team's name.
    found = FindThreadTicket(lease.destination, false, lease.entry.team, lease.entry.thread);
  }
  return found;
}

absl::StatusOr<std::optional<ThreadTicket>> RocksDbBackend::FindThreadTicket(absl::string_view destination, bool owner,
                                                                    absl::string_view team,
                                                                    absl::string_view thread) {
  std::string value;
  const std::string key = ThreadTicketKey(destination, owner, team, thread);
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), tickets_cf_, key, &value);
  if (s.IsNotFound()) return std::optional<ThreadTicket>();
  if (!s.ok()) return ToAbsl(s);
  const std::optional<int64_t> when = MessageRecordTime(value);
  if (!when || *when < absl::ToUnixMillis(clock_.Now() - options_.dedup_window)) {
    return std::optional<ThreadTicket>();
  }
  std::optional<ThreadTicket> ticket = DecodeThreadTicket(absl::string_view(value).substr(8));
  if (!ticket) return absl::DataLossError(absl::StrCat("unreadable ticket record for ", destination));
  ticket->recorded_at = absl::FromUnixMillis(*when);
  return ticket;
}

absl::StatusOr<TicketOrigin> RocksDbBackend::FindTicketOrigin(absl::string_view destination, absl::string_view ticket) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ticket_origins_cf_, JoinKey(destination, ticket), &value);
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat("no ticket ", ticket, " created at ", destination));
  if (!s.ok()) return ToAbsl(s);
  const std::optional<int64_t> when = MessageRecordTime(value);
  if (!when || *when < absl::ToUnixMillis(clock_.Now() - options_.ticket_origin_window)) {
    return absl::NotFoundError(absl::StrCat("ticket ", ticket, " at ", destination, " is older than the origin window"));
  }
  const absl::string_view rest = absl::string_view(value).substr(8);
  // The message key holds one '\0' (source, id); the JSON follows the next one.
  const size_t first = rest.find('\0');
  const size_t second = first == absl::string_view::npos ? first : rest.find('\0', first + 1);
  if (second == absl::string_view::npos) return absl::DataLossError("a ticket origin record is damaged");
  return TicketOrigin{std::string(rest.substr(0, second)), std::string(rest.substr(second + 1))};
}

absl::Status RocksDbBackend::PutLabel(absl::string_view message_key, absl::string_view record) {
  std::string existing;
  const rocksdb::Slice key(message_key.data(), message_key.size());
  const rocksdb::Status before = db_->Get(rocksdb::ReadOptions(), labels_cf_, key, &existing);
  if (!before.ok() && !before.IsNotFound()) return ToAbsl(before);
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // an agent's decision: worth an fsync
  const absl::Status written =
      Written(ToAbsl(db_->Put(write_options, labels_cf_, key, rocksdb::Slice(record.data(), record.size()))));
  if (written.ok() && before.IsNotFound()) ++labels_;
  return written;
}

absl::StatusOr<std::optional<std::string>> RocksDbBackend::Label(absl::string_view message_key) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), labels_cf_, rocksdb::Slice(message_key.data(), message_key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return ToAbsl(s);
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::string>> RocksDbBackend::Labels(absl::string_view after, size_t limit, std::string* last) {
  std::vector<std::string> out;
  const std::string start(after);  // `after` may point into `*last`
  last->clear();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), labels_cf_));
  if (start.empty()) {
    it->SeekToFirst();
  } else {
    it->Seek(start);
    if (it->Valid() && Sv(it->key()) == start) it->Next();
  }
  for (; it->Valid() && out.size() < limit; it->Next()) {
    out.emplace_back(Sv(it->value()));
    last->assign(it->key().data(), it->key().size());
  }
  if (!it->status().ok()) return ToAbsl(it->status());
  return out;
}

absl::StatusOr<std::optional<router::ConversationOwner>> RocksDbBackend::ConversationTeam(absl::string_view key,
                                                                               absl::Time since) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), conversations_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  return ConversationRecord(s, value, since);
}

std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> RocksDbBackend::ConversationTeamInMemory(
    absl::string_view key, absl::Time since) {
  rocksdb::ReadOptions memory_only;
  memory_only.read_tier = rocksdb::kBlockCacheTier;
  std::string value;
  const rocksdb::Status s =
      db_->Get(memory_only, conversations_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsIncomplete()) return std::nullopt;  // needs a file read
  return ConversationRecord(s, value, since);
}

absl::Status RocksDbBackend::SetManualPause(absl::string_view destination, bool paused) {
  rocksdb::WriteOptions options;
  options.sync = true;  // an operator's decision: it must hold after a crash
  if (paused) return ToAbsl(db_->Put(options, meta_cf_, ManualPauseKey(destination), "1"));
  return ToAbsl(db_->Delete(options, meta_cf_, ManualPauseKey(destination)));
}

absl::StatusOr<bool> RocksDbBackend::ManualPause(absl::string_view destination) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, ManualPauseKey(destination), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return ToAbsl(s);
  return true;
}

std::vector<DeadEntry> RocksDbBackend::DeadLetters(absl::string_view destination, size_t limit) {
  std::vector<DeadEntry> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  const std::string prefix =
      destination.empty() ? "" : JoinKey(destination, "");
  for (it->Seek(prefix); it->Valid() && out.size() < limit; it->Next()) {
    if (!absl::StartsWith(Sv(it->key()), prefix)) break;
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(Sv(it->key()));
    std::optional<QueueEntry> entry = DecodeEntry(Sv(it->value()));
    if (!key || !entry) continue;
    out.push_back({key->destination, key->seq, *std::move(entry)});
  }
  // Keys sort by level, then seq: order by arrival for people.
  std::sort(out.begin(), out.end(), [](const DeadEntry& a, const DeadEntry& b) { return a.seq < b.seq; });
  return out;
}

absl::StatusOr<std::vector<DeadEntry>> RocksDbBackend::Requeue(const std::string& destination,
                                                               std::optional<uint64_t> seq) {
  rocksdb::WriteBatch batch;
  std::vector<DeadEntry> moved;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  const std::string prefix = JoinKey(destination, "");
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(Sv(it->key()));
    std::optional<QueueEntry> entry = DecodeEntry(Sv(it->value()));
    if (!key || !entry || key->destination != destination || (seq && key->seq != *seq)) continue;
    entry->attempts = 0;
    entry->next_attempt_unix_ms = 0;
    entry->level = key->level;
    batch.Delete(dead_cf_, it->key());
    batch.Put(queue_cf_, it->key(), EncodeEntry(*entry));
    batch.Put(by_message_cf_, ByMessageKey(entry->message_key, Sv(it->key())), "q");
    moved.push_back({destination, key->seq, *std::move(entry)});
  }
  if (!it->status().ok()) return ToAbsl(it->status());
  if (moved.empty()) return moved;
  rocksdb::WriteOptions options;
  options.sync = true;
  if (auto s = Written(ToAbsl(db_->Write(options, &batch))); !s.ok()) return s;
  dead_letters_ -= static_cast<int64_t>(moved.size());
  // Keys sort by level, then seq: a requeued entry joins the end of its thread in arrival order.
  std::sort(moved.begin(), moved.end(), [](const DeadEntry& a, const DeadEntry& b) { return a.seq < b.seq; });
  return moved;
}

absl::Status RocksDbBackend::SetDestinationPause(absl::string_view destination, absl::Time until) {
  return ToAbsl(db_->Put(rocksdb::WriteOptions(), meta_cf_, PauseKey(destination),
                         EncodeSeq(static_cast<uint64_t>(absl::ToUnixMillis(until)))));
}

absl::StatusOr<absl::Time> RocksDbBackend::DestinationPause(absl::string_view destination) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, PauseKey(destination), &value);
  if (s.IsNotFound()) return absl::InfinitePast();
  if (!s.ok()) return ToAbsl(s);
  if (value.size() != 8) return absl::DataLossError("a destination pause record is damaged");
  return absl::FromUnixMillis(static_cast<int64_t>(DecodeSeq(value)));
}

std::vector<MessageDelivery> RocksDbBackend::Deliveries(absl::string_view message_key) {
  std::vector<MessageDelivery> out;
  const std::string prefix = JoinKey(message_key, "");
  // Every read at one point in time: an entry moved meanwhile (dead-lettered, delivered) is
  // seen where it was or where it went, never nowhere.
  rocksdb::ManagedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions at;
  at.snapshot = snapshot.snapshot();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(at, by_message_cf_));
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const absl::string_view queue_key = Sv(it->key()).substr(prefix.size());
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(queue_key);
    if (!key) continue;
    const bool dead = Sv(it->value()) == "d";
    std::string value;
    if (!db_->Get(at, dead ? dead_cf_ : queue_cf_, rocksdb::Slice(queue_key.data(), queue_key.size()), &value).ok()) {
      continue;
    }
    std::optional<QueueEntry> entry = DecodeEntry(value);
    if (!entry) continue;
    MessageDelivery d{key->destination, key->seq, *std::move(entry), dead ? "dead_letter" : "", -1};
    out.push_back(std::move(d));
  }
  it.reset(db_->NewIterator(at, delivered_cf_));
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(Sv(it->key()).substr(prefix.size()));
    if (!key) continue;
    if (std::optional<MessageDelivery> d = DeliveredFromRecord(key->destination, key->seq, Sv(it->value()))) {
      out.push_back(*std::move(d));
    }
  }
  return out;
}

StorageStats RocksDbBackend::Stats() {
  StorageStats stats;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    uint64_t value = 0;
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kLiveSstFilesSize, &value)) stats.live_bytes += value;
    if (db_->GetIntProperty(handle, rocksdb::DB::Properties::kEstimatePendingCompactionBytes, &value)) {
      stats.pending_compaction_bytes += value;
    }
  }
  uint64_t value = 0;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value)) stats.writes_stopped = value != 0;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kActualDelayedWriteRate, &value)) stats.delayed_write_rate = value;
  stats.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  rocksdb::HistogramData sync;
  statistics_->histogramData(rocksdb::WAL_FILE_SYNC_MICROS, &sync);
  stats.wal_sync_seconds = static_cast<double>(sync.sum) / 1e6;
  stats.stall_micros = statistics_->getTickerCount(rocksdb::STALL_MICROS);
  return stats;
}

absl::Status RocksDbBackend::Compact() {
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (auto s = ToAbsl(db_->CompactRange(options, handle, nullptr, nullptr)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksDbBackend::GetMessage(absl::string_view key) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), messages_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  if (!s.ok()) return ToAbsl(s);
  if (value.size() < 8) return absl::DataLossError("short message record");
  return value.substr(8);
}

absl::StatusOr<std::vector<Quarantined>> RocksDbBackend::ListQuarantine(uint64_t after, size_t limit) {
  std::vector<Quarantined> out;
  const int64_t oldest_ms = absl::ToUnixMillis(clock_.Now() - options_.quarantine_retention);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), quarantine_cf_));
  for (it->Seek(EncodeSeqBigEndian(after + 1)); it->Valid() && out.size() < limit; it->Next()) {
    std::optional<QuarantineRecord> record = DecodeQuarantine(Sv(it->value()));
    if (!record) return absl::DataLossError(absl::StrCat("quarantine record ", DecodeSeqBigEndian(Sv(it->key())), " is damaged"));
    if (record->received_unix_ms < oldest_ms) continue;  // expired, not yet compacted away
    out.push_back({DecodeSeqBigEndian(Sv(it->key())), *std::move(record)});
  }
  if (!it->status().ok()) return ToAbsl(it->status());
  return out;
}

absl::StatusOr<std::optional<Quarantined>> RocksDbBackend::FindQuarantined(uint64_t id) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), quarantine_cf_, EncodeSeqBigEndian(id), &value);
  if (s.IsNotFound()) return std::optional<Quarantined>();
  if (!s.ok()) return ToAbsl(s);
  std::optional<QuarantineRecord> record = DecodeQuarantine(value);
  if (!record) return absl::DataLossError(absl::StrCat("quarantine record ", id, " is damaged"));
  if (record->received_unix_ms < absl::ToUnixMillis(clock_.Now() - options_.quarantine_retention)) {
    return std::optional<Quarantined>();
  }
  return std::optional<Quarantined>(Quarantined{id, *std::move(record)});
}

absl::Status RocksDbBackend::ReleaseQuarantined(uint64_t id) {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  return Written(ToAbsl(db_->Delete(write_options, quarantine_cf_, EncodeSeqBigEndian(id))));
}

int64_t RocksDbBackend::QuarantineEstimate() {
  uint64_t keys = 0;
  db_->GetIntProperty(quarantine_cf_, rocksdb::DB::Properties::kEstimateNumKeys, &keys);
  return static_cast<int64_t>(keys);
}

}  // namespace triage::storage
