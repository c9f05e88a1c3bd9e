#include "storage/store.h"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <filesystem>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "storage/status.h"

namespace triage::storage {
namespace {

// SLA histograms count in steps of 10 s.

// The deadline an entry's SLA counts carry: the owner team's only.
template <typename Entry>  // QueueEntry or QueueEntryView
int64_t OwnerDeadline(const Entry& entry) {
  return entry.owner ? entry.sla_deadline_unix_ms : 0;
}

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

// The chain of the in-memory index (per process, never stored); 0 for an entry whose thread is
// its own message: no other entry can share it. The owner's entries of a thread are one chain
// whatever their team, like their ticket: when a follow-up moves the conversation to another
// team, its note waits for the ticket the first team's entry creates. An informed team's
// entries are a chain of their own.
template <typename Entry>  // QueueEntry or QueueEntryView
uint64_t ChainOf(const Entry& entry) {
  if (entry.thread == entry.message_key) return 0;
  const uint64_t hash =
      absl::HashOf(entry.owner ? absl::string_view() : absl::string_view(entry.team), entry.thread);
  return hash == 0 ? 1 : hash;
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

}  // namespace

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

// Background errors (a flush or compaction that hit a full disk): the store becomes
// unavailable until it resumes. Attached once the Store exists, detached before it closes.
class Store::ErrorListener : public rocksdb::EventListener {
 public:
  void Attach(Store* store) {
    std::lock_guard lock(mu_);
    store_ = store;
  }
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    std::lock_guard lock(mu_);
    if (store_ != nullptr && error != nullptr && !error->ok()) store_->WriteFailed(ToAbsl(*error));
  }

 private:
  std::mutex mu_;
  Store* store_ = nullptr;
};

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options, absl::Time now) {
  if (auto s = options.Validate(); !s.ok()) return s;
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
  // writer thread (TryResume).
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
  // RocksDB borrows the filter: the Store owns it and outlives the DB handle.
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
  std::unique_ptr<Store> store(new Store(options, std::unique_ptr<rocksdb::DB>(raw), handles));
  listener->Attach(store.get());
  store->listener_ = listener;
  store->filter_ = std::move(filter);
  store->origin_filter_ = std::move(origin_filter);
  store->quarantine_filter_ = std::move(quarantine_filter);
  store->statistics_ = std::move(statistics);
  if (auto s = store->Recover(now); !s.ok()) return s;
  store->writer_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "store-writer");
    s->WriterLoop();
  });
  return store;
}

Store::Store(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
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
      quarantine_cf_(handles_[11]),
      index_(options_.aging_step) {}

Store::~Store() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (listener_) listener_->Attach(nullptr);
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  db_->Close();
}

absl::Status Store::Recover(absl::Time now) {
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
  std::lock_guard lock(mu_);
  // One sequential pass, nothing held but the index: keys sort by destination, then level, then
  // seq, and chains must be rebuilt in arrival order, so each destination's levels are merged
  // by seq (one iterator per level).
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
      index_.Add(destination, key->seq,
                 IndexEntry{.enqueued_unix_ms = entry->enqueued_unix_ms,
                    .due_unix_ms = entry->next_attempt_unix_ms > now_ms ? entry->next_attempt_unix_ms : 0,
                    .sla_deadline_unix_ms = OwnerDeadline(*entry),
                    .chain = ChainOf(*entry),
                    .team = index_.TeamId(entry->team),
                    .level = key->level});
      it.Next();
    }
    destinations->Seek(destination + '\x01');  // past every key of this destination
  }
  if (!destinations->status().ok()) return ToAbsl(destinations->status());

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
    ++dead_letters_;
  }
  if (!dead->status().ok()) return ToAbsl(dead->status());
  std::unique_ptr<rocksdb::Iterator> labels(db_->NewIterator(rocksdb::ReadOptions(), labels_cf_));
  for (labels->SeekToFirst(); labels->Valid(); labels->Next()) ++labels_;
  if (!labels->status().ok()) return ToAbsl(labels->status());
  if (!build_index) return absl::OkStatus();
  backfill.Put(meta_cf_, kByMessageBuiltKey, "1");
  rocksdb::WriteOptions synced;
  synced.sync = true;
  return ToAbsl(db_->Write(synced, &backfill));
}

void Store::WriteFailed(const absl::Status& status) {
  // Only storage errors make it unavailable; a refused request (closing, full queues) does not.
  if (status.code() != absl::StatusCode::kUnavailable) return;
  std::lock_guard lock(health_mu_);
  ++health_.errors;
  if (!health_.available) return;
  health_.available = false;
  health_.error = std::string(status.message());
  health_.since = clock_.Now();
  available_.store(false);
  if (options_.log) options_.log(3, absl::StrCat("storage unavailable: ", status.message()));
  writer_cv_.notify_all();
}

bool Store::TryResume() {
  auto failed = [&](absl::string_view step, const rocksdb::Status& s) {
    if (options_.log) options_.log(0, absl::StrCat("resume: ", step, " failed: ", s.ToString()));
    return false;
  };
  if (const rocksdb::Status resumed = db_->Resume(); !resumed.ok()) return failed("Resume", resumed);
  // Resume succeeds on a database that never stopped (a failed foreground write): a synced
  // write proves the disk takes data again.
  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (const rocksdb::Status probe = db_->Put(synced, meta_cf_, "probe", "1"); !probe.ok()) return failed("probe", probe);
  {
    std::lock_guard lock(health_mu_);
    health_.available = true;
    ++health_.recoveries;
    if (options_.log) {
      options_.log(2, absl::StrCat("storage available again after ",
                                   absl::FormatDuration(absl::Trunc(clock_.Now() - health_.since, absl::Seconds(1)))));
    }
    available_.store(true);
  }
  writer_cv_.notify_all();
  return true;
}

StorageHealth Store::Health() {
  std::lock_guard lock(health_mu_);
  return health_;
}

void Store::SetReadyCallback(ReadyCallback callback) {
  std::lock_guard lock(mu_);
  ready_callback_ = std::move(callback);
}

void Store::Submit(std::vector<NewMessage> messages, absl::Time received_at,
                   absl::AnyInvocable<void(IngestResult)> done, std::optional<QuarantineRecord> quarantine) {
  absl::Status refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = absl::UnavailableError("the store is closing");
    } else if (!available_.load()) {
      refused = absl::UnavailableError("storage unavailable (resuming)");
    } else if (pending_.size() >= options_.max_pending_requests) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          options_.max_pending_requests, " requests already wait for storage"));
    } else if (index_.size() >= static_cast<int64_t>(options_.max_queued_entries)) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("the queues hold ", index_.size(), " entries, the configured maximum"));
    } else {
      pending_.push_back({std::move(messages), received_at, std::move(done), std::move(quarantine)});
    }
  }
  if (!refused.ok()) {
    done(IngestResult{refused});
    return;
  }
  writer_cv_.notify_one();
}

void Store::WriterLoop() {
  std::vector<Pending> group;
  for (;;) {
    if (!available_.load()) {
      // Unavailable: try to resume now and then; requests are refused at once meanwhile.
      std::unique_lock lock(mu_);
      writer_cv_.wait_for(lock, std::chrono::microseconds(absl::ToInt64Microseconds(options_.recovery_interval)),
                          [&] { return stopping_; });
      if (stopping_ && pending_.empty()) return;
      lock.unlock();
      if (!stopping_) TryResume();
    }
    {
      std::unique_lock lock(mu_);
      writer_cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || !available_.load(); });
      if (pending_.empty() && !stopping_) continue;  // went unavailable: resume first
      if (pending_.empty()) return;  // stopping, and everything accepted is committed
      while (!pending_.empty() && group.size() < options_.max_group_requests) {
        group.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    CommitGroup(group);
    group.clear();
  }
}

void Store::CommitGroup(std::vector<Pending>& group) {
  struct Added {
    const std::string* destination;
    uint64_t seq;
    IndexEntry entry;
    const std::string* team;
  };
  rocksdb::WriteBatch batch;
  std::vector<IngestResult> results(group.size());
  std::vector<Added> added;
  absl::flat_hash_set<absl::string_view> keys_in_group;
  uint64_t seq = next_seq_;
  uint64_t quarantine_id = next_quarantine_id_;
  const rocksdb::ReadOptions read_options;
  std::string existing;

  for (size_t i = 0; i < group.size(); ++i) {
    Pending& request = group[i];
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
        QueueEntry entry;
        entry.message_key = message.key;
        entry.team = delivery.team;
        entry.thread = message.thread_key.empty() ? message.key : message.thread_key;
        entry.owner = delivery.owner || delivery.reply;
        entry.reply = delivery.reply;
        entry.level = message.level;
        entry.enqueued_unix_ms = received_ms;
        entry.sla_deadline_unix_ms = message.sla_deadline == absl::InfinitePast() || delivery.reply
                                         ? 0
                                         : absl::ToUnixMillis(message.sla_deadline);
        entry.ticket_json = message.ticket_json;
        const std::string queue_key = QueueKey(delivery.destination, message.level, seq);
        batch.Put(queue_cf_, queue_key, EncodeEntry(entry));
        batch.Put(by_message_cf_, ByMessageKey(message.key, queue_key), "q");
        added.push_back({&delivery.destination, seq,
                         IndexEntry{.enqueued_unix_ms = received_ms,
                              .sla_deadline_unix_ms = OwnerDeadline(entry),
                              .chain = ChainOf(entry),
                              .level = message.level},
                         &delivery.team});
        ++seq;
      }
    }
  }
  batch.Put(meta_cf_, kNextSeqKey, EncodeSeq(seq));

  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // the one fsync this whole group shares
  const absl::Status written = ToAbsl(db_->Write(write_options, &batch));
  if (!written.ok()) WriteFailed(written);

  std::vector<std::pair<std::string, size_t>> ready_destinations;  // with their new entries
  ReadyCallback callback;
  if (written.ok()) {
    next_seq_ = seq;
    next_quarantine_id_ = quarantine_id;
    std::lock_guard lock(mu_);
    for (Added& a : added) {
      a.entry.team = index_.TeamId(*a.team);
      index_.Add(*a.destination, a.seq, a.entry);
      auto ready = std::find_if(ready_destinations.begin(), ready_destinations.end(),
                                [&a](const auto& d) { return d.first == *a.destination; });
      if (ready == ready_destinations.end()) {
        ready_destinations.emplace_back(*a.destination, 1);
      } else {
        ++ready->second;
      }
    }
    callback = ready_callback_;
  }
  for (size_t i = 0; i < group.size(); ++i) {
    if (!written.ok() && results[i].status.ok()) results[i] = IngestResult{written};
    group[i].done(results[i]);
  }
  if (callback) {
    for (const auto& [destination, entries] : ready_destinations) callback(destination, entries);
  }
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
  {
    std::lock_guard lock(mu_);
    while (leased.size() < limit) {
      std::optional<QueueIndex::Leased> next = index_.Lease(destination, now_ms, probe && leased.empty());
      if (!next) break;
      leased.push_back(*next);
    }
  }
  std::vector<Lease> leases;
  leases.reserve(leased.size());
  std::string value;
  for (const QueueIndex::Leased& one : leased) {
    const rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), queue_cf_, QueueKey(destination, one.entry.level, one.seq), &value);
    if (!s.ok() && !s.IsNotFound()) {
      // Unreadable for now (an I/O error): due again after a while, nothing lost.
      {
        std::lock_guard lock(mu_);
        (void)index_.Delay(destination, one.seq,
                           now_ms + std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.recovery_interval)));
      }
      if (options_.log) options_.log(3, absl::StrCat("queue entry of ", destination, " unreadable: ", s.ToString()));
      continue;
    }
    std::optional<QueueEntry> entry;
    if (s.ok()) entry = DecodeEntry(value);
    // The index and RocksDB disagree: the entry stays leased, out of the way until a restart
    // rebuilds the index, rather than spinning on it.
    if (!entry) continue;
    leases.push_back(Lease{destination, one.seq, *std::move(entry), one.early});
  }
  return leases;
}

absl::Time Store::NextDue(const std::string& destination) {
  std::lock_guard lock(mu_);
  return index_.NextDue(destination);
}

absl::Status Store::Return(const Lease& lease) {
  std::lock_guard lock(mu_);
  return index_.Return(lease.destination, lease.seq);
}

void Store::AddDelivered(rocksdb::WriteBatch& batch, const Lease& lease, int64_t now_ms,
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

absl::Status Store::Ack(const Lease& lease, absl::string_view remote_ticket, bool created, absl::string_view text) {
  if (remote_ticket.empty() && text.empty()) {
    const Lease* one = &lease;
    return AckBatch({&one, 1});
  }
  rocksdb::WriteBatch batch;
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  AddDelivered(batch, lease, now_ms, remote_ticket, text);
  absl::Status written;
  if (remote_ticket.empty()) {
    written = ToAbsl(db_->Write(rocksdb::WriteOptions(), &batch));
  } else {
    const ThreadTicket filed{std::string(remote_ticket), lease.entry.level, lease.entry.team};
    batch.Put(tickets_cf_, ThreadTicketKey(lease), EncodeMessageRecord(now_ms, EncodeThreadTicket(filed)));
    if (created) {
      batch.Put(ticket_origins_cf_, JoinKey(lease.destination, remote_ticket),
                EncodeMessageRecord(now_ms, JoinKey(lease.entry.message_key, lease.entry.ticket_json)));
    }
    rocksdb::WriteOptions write_options;
    write_options.sync = true;  // the only proof that this ticket exists, or was raised
    written = ToAbsl(db_->Write(write_options, &batch));
  }
  if (!written.ok()) {
    // Delivered but not recorded: it stays leased, so nothing delivers it again; the caller
    // acks again once storage is back (a crash first redelivers it once, same id).
    WriteFailed(written);
    return written;
  }
  std::lock_guard lock(mu_);
  return index_.Remove(lease.destination, lease.seq);
}

absl::Status Store::AckBatch(absl::Span<const Lease* const> leases) {
  if (leases.empty()) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  for (const Lease* lease : leases) AddDelivered(batch, *lease, now_ms, {}, {});
  // Not synced, like every plain ack (see Ack).
  if (const absl::Status written = ToAbsl(db_->Write(rocksdb::WriteOptions(), &batch)); !written.ok()) {
    WriteFailed(written);
    return written;
  }
  absl::Status removed;
  std::lock_guard lock(mu_);
  for (const Lease* lease : leases) removed.Update(index_.Remove(lease->destination, lease->seq));
  return removed;
}

absl::StatusOr<std::optional<ThreadTicket>> Store::FindThreadTicket(const Lease& lease) {
  if (lease.entry.reply) return FindThreadTicket(lease.destination, false, kReplyChain, lease.entry.thread);
  absl::StatusOr<std::optional<ThreadTicket>> found =
      FindThreadTicket(lease.destination, lease.entry.owner, lease.entry.team, lease.entry.thread);
  if (found.ok() && !found->has_value() && lease.entry.owner) {
    // Recorded before the owner's ticket was the thread's: under the owner team's name.
    found = FindThreadTicket(lease.destination, false, lease.entry.team, lease.entry.thread);
  }
  return found;
}

absl::StatusOr<std::optional<ThreadTicket>> Store::FindThreadTicket(absl::string_view destination, bool owner,
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

absl::StatusOr<TicketOrigin> Store::FindTicketOrigin(absl::string_view destination, absl::string_view ticket) {
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

absl::Status Store::PutLabel(absl::string_view message_key, absl::string_view record) {
  std::string existing;
  const rocksdb::Slice key(message_key.data(), message_key.size());
  const rocksdb::Status before = db_->Get(rocksdb::ReadOptions(), labels_cf_, key, &existing);
  if (!before.ok() && !before.IsNotFound()) return ToAbsl(before);
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // an agent's decision: worth an fsync
  const absl::Status written =
      ToAbsl(db_->Put(write_options, labels_cf_, key, rocksdb::Slice(record.data(), record.size())));
  if (!written.ok()) WriteFailed(written);
  if (written.ok() && before.IsNotFound()) {
    std::lock_guard lock(mu_);
    ++labels_;
  }
  return written;
}

absl::StatusOr<std::optional<std::string>> Store::Label(absl::string_view message_key) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), labels_cf_, rocksdb::Slice(message_key.data(), message_key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return ToAbsl(s);
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<std::vector<std::string>> Store::Labels(absl::string_view after, size_t limit, std::string* last) {
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

int64_t Store::LabelCount() {
  std::lock_guard lock(mu_);
  return labels_;
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
  const absl::Status written =
      ToAbsl(db_->Put(rocksdb::WriteOptions(), queue_cf_,
                      QueueKey(lease.destination, entry.level, lease.seq), EncodeEntry(entry)));
  if (!written.ok()) WriteFailed(written);
  ReadyCallback callback;
  {
    std::lock_guard lock(mu_);
    if (auto s = index_.Delay(lease.destination, lease.seq, entry.next_attempt_unix_ms); !s.ok()) return s;
    callback = ready_callback_;
  }
  if (callback) callback(lease.destination, 1);
  return written;
}

absl::Status Store::MarkSending(const Lease& lease, absl::string_view note) {
  QueueEntry entry = lease.entry;
  ++entry.attempts;
  entry.last_error.assign(note.data(), note.size());
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // what a restart reads to know that it may have been sent
  const absl::Status written = ToAbsl(db_->Put(write_options, queue_cf_,
                                               QueueKey(lease.destination, entry.level, lease.seq), EncodeEntry(entry)));
  if (!written.ok()) WriteFailed(written);
  return written;
}

absl::Status Store::DeadLetter(const Lease& lease, absl::string_view error) {
  QueueEntry entry = lease.entry;
  ++entry.attempts;
  entry.last_error.assign(error.data(), error.size());
  const std::string key = QueueKey(lease.destination, entry.level, lease.seq);
  rocksdb::WriteBatch batch;
  batch.Delete(queue_cf_, key);
  batch.Put(dead_cf_, key, EncodeEntry(entry));
  batch.Put(by_message_cf_, ByMessageKey(entry.message_key, key), "d");
  rocksdb::WriteOptions write_options;
  write_options.sync = true;  // a dead letter is the only trace left of the message
  const absl::Status written = ToAbsl(db_->Write(write_options, &batch));
  if (!written.ok()) WriteFailed(written);
  // Not moved when the write failed: it stays leased until the caller records it again (or a
  // restart).
  if (!written.ok()) return written;
  std::lock_guard lock(mu_);
  ++dead_letters_;
  return index_.Remove(lease.destination, lease.seq);
}

namespace {

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

}  // namespace

absl::StatusOr<std::optional<router::ConversationOwner>> Store::ConversationTeam(absl::string_view key,
                                                                               absl::Time since) {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), conversations_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  return ConversationRecord(s, value, since);
}

std::optional<absl::StatusOr<std::optional<router::ConversationOwner>>> Store::ConversationTeamInMemory(
    absl::string_view key, absl::Time since) {
  rocksdb::ReadOptions memory_only;
  memory_only.read_tier = rocksdb::kBlockCacheTier;
  std::string value;
  const rocksdb::Status s =
      db_->Get(memory_only, conversations_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsIncomplete()) return std::nullopt;  // needs a file read
  return ConversationRecord(s, value, since);
}

namespace {
std::string PauseKey(absl::string_view destination) {
  return JoinKey("pause", destination);
}
std::string ManualPauseKey(absl::string_view destination) {
  return JoinKey("manual_pause", destination);
}
}  // namespace

absl::Status Store::SetManualPause(absl::string_view destination, bool paused) {
  rocksdb::WriteOptions options;
  options.sync = true;  // an operator's decision: it must hold after a crash
  if (paused) return ToAbsl(db_->Put(options, meta_cf_, ManualPauseKey(destination), "1"));
  return ToAbsl(db_->Delete(options, meta_cf_, ManualPauseKey(destination)));
}

absl::StatusOr<bool> Store::ManualPause(absl::string_view destination) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, ManualPauseKey(destination), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return ToAbsl(s);
  return true;
}

std::vector<QueueDepth> Store::OldestEntries() {
  std::lock_guard lock(mu_);
  return index_.OldestEntries();
}

std::vector<QueueDepth> Store::QueueStats(absl::Time now) {
  std::lock_guard lock(mu_);
  return index_.QueueStats(absl::ToUnixMillis(now));
}

std::vector<DeadEntry> Store::DeadLetters(absl::string_view destination, size_t limit) {
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

absl::StatusOr<int64_t> Store::Requeue(const std::string& destination, std::optional<uint64_t> seq) {
  struct Moved {
    uint64_t seq;
    std::string team;  // its id is taken under the lock below
    IndexEntry entry;
  };
  rocksdb::WriteBatch batch;
  std::vector<Moved> moved;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dead_cf_));
  const std::string prefix = JoinKey(destination, "");
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(Sv(it->key()));
    std::optional<QueueEntry> entry = DecodeEntry(Sv(it->value()));
    if (!key || !entry || key->destination != destination || (seq && key->seq != *seq)) continue;
    entry->attempts = 0;
    entry->next_attempt_unix_ms = 0;
    batch.Delete(dead_cf_, it->key());
    batch.Put(queue_cf_, it->key(), EncodeEntry(*entry));
    batch.Put(by_message_cf_, ByMessageKey(entry->message_key, Sv(it->key())), "q");
    moved.push_back({key->seq, entry->team,
                     IndexEntry{.enqueued_unix_ms = entry->enqueued_unix_ms,
                          .sla_deadline_unix_ms = OwnerDeadline(*entry),
                          .chain = ChainOf(*entry),
                          .level = key->level}});
  }
  if (!it->status().ok()) return ToAbsl(it->status());
  if (moved.empty()) {
    if (seq) return absl::NotFoundError(absl::StrCat("no dead letter ", *seq, " for ", destination));
    return 0;
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  if (auto s = ToAbsl(db_->Write(options, &batch)); !s.ok()) return s;
  ReadyCallback callback;
  {
    std::lock_guard lock(mu_);
    std::sort(moved.begin(), moved.end(), [](const Moved& a, const Moved& b) { return a.seq < b.seq; });
    for (Moved& m : moved) {
      m.entry.team = index_.TeamId(m.team);
      index_.Add(destination, m.seq, m.entry);
    }
    dead_letters_ -= static_cast<int64_t>(moved.size());
    callback = ready_callback_;
  }
  if (callback) callback(destination, moved.size());
  return static_cast<int64_t>(moved.size());
}

absl::Status Store::SetDestinationPause(absl::string_view destination, absl::Time until) {
  return ToAbsl(db_->Put(rocksdb::WriteOptions(), meta_cf_, PauseKey(destination),
                         EncodeSeq(static_cast<uint64_t>(absl::ToUnixMillis(until)))));
}

absl::StatusOr<absl::Time> Store::DestinationPause(absl::string_view destination) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, PauseKey(destination), &value);
  if (s.IsNotFound()) return absl::InfinitePast();
  if (!s.ok()) return ToAbsl(s);
  if (value.size() != 8) return absl::DataLossError("a destination pause record is damaged");
  return absl::FromUnixMillis(static_cast<int64_t>(DecodeSeq(value)));
}

std::vector<MessageDelivery> Store::Deliveries(absl::string_view message_key) {
  std::vector<MessageDelivery> out;
  const std::string prefix = JoinKey(message_key, "");
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), by_message_cf_));
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const absl::string_view queue_key = Sv(it->key()).substr(prefix.size());
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(queue_key);
    if (!key) continue;
    const bool dead = Sv(it->value()) == "d";
    std::string value;
    if (!db_->Get(rocksdb::ReadOptions(), dead ? dead_cf_ : queue_cf_,
                  rocksdb::Slice(queue_key.data(), queue_key.size()), &value).ok()) {
      continue;
    }
    std::optional<QueueEntry> entry = DecodeEntry(value);
    if (!entry) continue;
    MessageDelivery d{key->destination, key->seq, *std::move(entry), dead ? "dead_letter" : "", -1};
    out.push_back(std::move(d));
  }
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), delivered_cf_));
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(Sv(it->key()), prefix); it->Next()) {
    const std::optional<DecodedQueueKey> key = DecodeQueueKey(Sv(it->key()).substr(prefix.size()));
    const std::optional<int64_t> when = MessageRecordTime(Sv(it->value()));
    if (!key || !when) continue;
    std::optional<DeliveredRecord> record = DecodeDelivered(Sv(it->value()).substr(8));
    if (!record) continue;
    MessageDelivery d{key->destination, key->seq, {}, "delivered", -1};
    d.entry.attempts = record->attempts;
    d.entry.team = std::move(record->team);
    d.entry.owner = record->owner;
    d.entry.reply = record->reply;
    d.delivered_at = absl::FromUnixMillis(*when);
    d.remote_ticket = std::move(record->remote_ticket);
    d.text = std::move(record->text);
    out.push_back(std::move(d));
  }
  // Where each queued one stands in its destination's index.
  std::lock_guard lock(mu_);
  for (MessageDelivery& d : out) {
    if (!d.state.empty()) continue;
    std::tie(d.state, d.position) = index_.Standing(d.destination, d.seq, d.entry.level);
  }
  return out;
}

Store::StorageStats Store::Stats() {
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

std::vector<QueueDepth> Store::Depths(absl::Time now) {
  std::lock_guard lock(mu_);
  return index_.Depths(absl::ToUnixMillis(now));
}

int64_t Store::DeadLetterCount() {
  std::lock_guard lock(mu_);
  return dead_letters_;
}

int64_t Store::QueuedEntries() {
  std::lock_guard lock(mu_);
  return index_.size();
}

absl::Status Store::Compact() {
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (auto s = ToAbsl(db_->CompactRange(options, handle, nullptr, nullptr)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Store::GetMessage(absl::string_view key) {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), messages_cf_, rocksdb::Slice(key.data(), key.size()), &value);
  if (!s.ok()) return ToAbsl(s);
  if (value.size() < 8) return absl::DataLossError("short message record");
  return value.substr(8);
}

absl::StatusOr<std::vector<Store::Quarantined>> Store::ListQuarantine(uint64_t after, size_t limit) {
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

absl::StatusOr<std::optional<Store::Quarantined>> Store::FindQuarantined(uint64_t id) {
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

absl::Status Store::ReleaseQuarantined(uint64_t id) {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const absl::Status written = ToAbsl(db_->Delete(write_options, quarantine_cf_, EncodeSeqBigEndian(id)));
  if (!written.ok()) WriteFailed(written);
  return written;
}

int64_t Store::QuarantineEstimate() {
  uint64_t keys = 0;
  db_->GetIntProperty(quarantine_cf_, rocksdb::DB::Properties::kEstimateNumKeys, &keys);
  return static_cast<int64_t>(keys);
}

}  // namespace triage::storage
