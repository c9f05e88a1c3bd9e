// The queue index's memory and the delivery side's storage cost: fills a Store in a temp
// folder with N entries (each its own thread, as most messages are; a tenth of them in
// threads of three) that arrived over the last 24 hours, each with its SLA deadline, reports
// the heap it holds per entry and the time of one Depths call (every /metrics scrape makes
// one: it counts the entries at SLA risk), then leases and acknowledges every entry and
// reports the time per delivery. Last, it fills the store again, puts every entry in back-off
// (a helpdesk outage) and times one OldestEntries call (every scrape makes one for the
// oldest-entry age).
//
// A restart is measured in a fresh process (this program again, with --reopen): the time
// Store::Open takes to rebuild the index from the filled database, and the resident size and
// heap once it has.
//
//   store_bench [ENTRIES]               default 200000
//   store_bench --fill ENTRIES DIR      only fill DIR (for bench/startup.sh), then reopen it
//   store_bench --reopen DIR            open DIR, print open_s, rss_mib and heap_mib
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/store.h"

namespace {

// Heap bytes in use (glibc mallinfo2: small blocks plus mmap'd large ones, such as a hash
// table's array): unlike the resident size, memory freed but kept by the allocator does not
// count.
int64_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// VmRSS of this process in MiB, from /proc/self/status.
double ResidentMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib = 0;
    if (line.rfind("VmRSS:", 0) == 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kib)) {
      return static_cast<double>(kib) / 1024;
    }
  }
  return -1;
}

int Reopen(const std::string& dir) {
  triage::storage::StoreOptions options;
  options.path = dir;
  const absl::Time start = absl::Now();
  auto store = triage::storage::Store::Open(options, absl::Now());
  const double open_s = absl::ToDoubleSeconds(absl::Now() - start);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  std::printf("restart: queued=%lld open_s=%.2f rss_mib=%.1f heap_mib=%.1f\n",
              static_cast<long long>((*store)->QueuedEntries()), open_s, ResidentMiB(),
              HeapInUse() / 1048576.0);
  return 0;
}

// Runs this program with --reopen `dir` in a fresh process.
int ReopenInChild(const std::string& dir) {
  std::fflush(stdout);
  return std::system(absl::StrCat("/proc/", getpid(), "/exe --reopen '", dir, "'").c_str()) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--reopen") return Reopen(argv[2]);
  int entries = 200'000;
  const bool fill_only = argc == 4 && std::string(argv[1]) == "--fill";
  if ((fill_only && !absl::SimpleAtoi(argv[2], &entries)) ||
      (!fill_only && argc > 1 && !absl::SimpleAtoi(argv[1], &entries))) {
    std::fprintf(stderr, "usage: store_bench [ENTRIES] | --fill ENTRIES DIR | --reopen DIR\n");
    return 2;
  }
  const std::string dir = fill_only ? std::string(argv[3])
                                    : absl::StrCat(std::filesystem::temp_directory_path().string(),
                                                   "/store_bench.", getpid());
  using triage::storage::Store;
  int64_t heap_index = 0;
  double lease_ack_us = 0;
  double stats_ms = 0;  // one QueueStats walk (each admin /v1/queues call does one)
  double depths_ms = 0;  // one Depths call (each scrape does one)
  double oldest_ms = 0;  // one OldestEntries call with every entry in back-off
  {
    triage::storage::StoreOptions options;
    options.path = dir;
    auto store = Store::Open(options, absl::Now());
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
      return 1;
    }
    const std::string ticket(400, 'x');  // a typical stored ticket is 0.5-1 KB of JSON
    const int64_t before = HeapInUse();
    const absl::Duration kSla[] = {absl::Hours(24), absl::Hours(4), absl::Hours(1), absl::Minutes(15)};
    const absl::Time first = absl::Now() - absl::Hours(24);
    auto fill = [&](const std::string& prefix) {
      for (int done = 0; done < entries;) {
        const absl::Time received = first + absl::Hours(24) * done / entries;
        std::vector<triage::storage::NewMessage> batch;
        for (int i = 0; i < 1000 && done < entries; ++i, ++done) {
          triage::storage::NewMessage& m = batch.emplace_back();
          m.key = triage::storage::MessageKey("generic", absl::StrCat(prefix, done));
          if (done % 10 == 0) {
            m.thread_key = triage::storage::ThreadKey("generic", absl::StrCat("conversation-", done / 30),
                                                      "author");
          }
          m.ticket_json = ticket;
          m.level = static_cast<triage::router::Level>(done % triage::router::kLevelCount);
          m.sla_deadline = received + kSla[static_cast<int>(m.level)];
          m.deliveries.push_back({"helpdesk", "support", true});
        }
        std::promise<void> stored;
        (*store)->Submit(std::move(batch), received, [&](triage::storage::IngestResult) { stored.set_value(); });
        stored.get_future().wait();
      }
    };
    fill("message-");
    // RocksDB's memtables grow too; compacting flushes them, so what is left is the index
    // (and RocksDB's block cache and table readers).
    (void)(*store)->Compact();
    heap_index = HeapInUse() - before;
    store->reset();
    if (ReopenInChild(dir) != 0 || fill_only) return fill_only ? 0 : 1;
    store = Store::Open(options, absl::Now());
    if (!store.ok()) return 1;
    const absl::Time walk = absl::Now();
    const size_t series = (*store)->QueueStats(absl::Now()).size();
    stats_ms = absl::ToDoubleMilliseconds(absl::Now() - walk);
    if (series == 0) std::fprintf(stderr, "no queue stats\n");
    const absl::Time depths = absl::Now();
    int64_t at_risk = 0;
    for (const auto& d : (*store)->Depths(absl::Now())) at_risk += d.sla_at_risk + d.sla_overdue;
    depths_ms = absl::ToDoubleMilliseconds(absl::Now() - depths);
    if (at_risk == 0) std::fprintf(stderr, "no entry at SLA risk\n");

    const absl::Time start = absl::Now();
    int delivered = 0;
    while (auto lease = (*store)->LeaseNext("helpdesk", absl::Now())) {
      (void)(*store)->Ack(*lease);
      ++delivered;
    }
    lease_ack_us = absl::ToDoubleMicroseconds(absl::Now() - start) / std::max(1, delivered);
    if (delivered != entries) std::fprintf(stderr, "delivered %d of %d\n", delivered, entries);

    fill("outage-");
    while (auto lease = (*store)->LeaseNext("helpdesk", absl::Now())) {
      (void)(*store)->RetryLater(*lease, absl::Now() + absl::Hours(1), "HTTP 503");
    }
    const absl::Time oldest = absl::Now();
    const size_t levels = (*store)->OldestEntries().size();
    oldest_ms = absl::ToDoubleMilliseconds(absl::Now() - oldest);
    if (levels == 0) std::fprintf(stderr, "no oldest entries\n");
  }
  std::filesystem::remove_all(dir);
  std::printf("entries=%d heap_growth_mib=%.1f bytes_per_entry=%.0f queue_stats_ms=%.1f depths_ms=%.2f "
              "lease_ack_us=%.2f oldest_in_backoff_ms=%.2f\n",
              entries, heap_index / 1048576.0, static_cast<double>(heap_index) / entries, stats_ms, depths_ms,
              lease_ack_us, oldest_ms);
  return 0;
}
