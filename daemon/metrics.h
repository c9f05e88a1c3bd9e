#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "storage/store.h"

namespace triage::daemon {

// Every metric of the daemon, declared once with its help text. Labels come only from bounded
// sets: configured source, team and destination names, HTTP status codes, fixed outcome words.
// prometheus-cpp metrics are thread-safe; the families are created at start-up and never
// change, so this struct is shared read-only by all threads.
struct Metrics {
  Metrics();

  // Renders the registry in the Prometheus text format, refreshing the queue gauges from
  // `store` first (one scrape at a time: no scrape sees another's gauges half refreshed).
  std::string Render(storage::Store& store);

 private:
  std::mutex render_mu_;
  // Counters that mirror a running total kept elsewhere (RocksDB tickers, CPU time): raised by
  // the difference since the last scrape.
  void Mirror(prometheus::Family<prometheus::Counter>& family, double total);
  std::mutex mirror_mu_;
  std::map<const void*, double> mirrored_;

 public:

  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>& ingest_requests;   // source, status
  prometheus::Family<prometheus::Counter>& ingest_bytes;      // source
  prometheus::Family<prometheus::Counter>& ingest_messages;   // source, outcome
  prometheus::Family<prometheus::Histogram>& ingest_latency;  // source
  prometheus::Family<prometheus::Counter>& ingest_events;      // source, kind
  prometheus::Family<prometheus::Counter>& ingest_ignored;     // source, reason
  prometheus::Family<prometheus::Counter>& signature_failures;  // source
  prometheus::Family<prometheus::Counter>& routed;            // team, level, rule
  prometheus::Family<prometheus::Counter>& feedback_requests;  // feedback, status
  prometheus::Family<prometheus::Counter>& feedback_labels;    // feedback, outcome
  prometheus::Family<prometheus::Gauge>& labels_stored;
  prometheus::Family<prometheus::Counter>& http_connections;  // listener, outcome
  prometheus::Family<prometheus::Gauge>& queue_entries;       // destination, team, level
  prometheus::Family<prometheus::Gauge>& queue_oldest_age;    // destination, level
  prometheus::Family<prometheus::Gauge>& queue_sla_at_risk;   // destination, team, level
  prometheus::Family<prometheus::Gauge>& queue_sla_overdue;   // destination, team, level
  prometheus::Family<prometheus::Gauge>& dead_letters;
  prometheus::Family<prometheus::Counter>& delivery_attempts;   // destination, outcome
  prometheus::Family<prometheus::Histogram>& delivery_latency;  // destination: enqueue to 2xx
  prometheus::Family<prometheus::Counter>& delivery_sla;        // destination, level, outcome
  prometheus::Family<prometheus::Histogram>& attempt_latency;   // destination: one attempt
  prometheus::Family<prometheus::Gauge>& destination_paused;    // destination
  prometheus::Family<prometheus::Gauge>& delivery_in_flight;    // destination
  prometheus::Family<prometheus::Counter>& rate_limit_waits;    // destination
  prometheus::Family<prometheus::Gauge>& helpdesk_open;          // destination, team
  prometheus::Family<prometheus::Gauge>& helpdesk_open_counted;  // destination, team: unix seconds
  prometheus::Family<prometheus::Gauge>& helpdesk_solved;        // destination, team
  prometheus::Family<prometheus::Counter>& acknowledgements;     // destination, platform, outcome
  prometheus::Family<prometheus::Gauge>& breaker_state;         // destination
  prometheus::Family<prometheus::Counter>& config_reloads;      // outcome
  prometheus::Family<prometheus::Counter>& quarantined;         // source
  prometheus::Family<prometheus::Counter>& quarantine_replays;  // outcome
  prometheus::Family<prometheus::Gauge>& quarantine_entries;
  prometheus::Family<prometheus::Gauge>& tls_certificate_expiry;  // of the certificate served
  // RocksDB and the process, refreshed on each scrape.
  prometheus::Family<prometheus::Gauge>& storage_live_bytes;
  prometheus::Family<prometheus::Gauge>& storage_pending_compaction_bytes;
  prometheus::Family<prometheus::Gauge>& storage_writes_stopped;
  prometheus::Family<prometheus::Gauge>& storage_available;
  prometheus::Family<prometheus::Counter>& storage_errors;
  prometheus::Family<prometheus::Counter>& storage_recoveries;
  prometheus::Family<prometheus::Gauge>& storage_delayed_write_rate;
  prometheus::Family<prometheus::Counter>& storage_wal_syncs;
  prometheus::Family<prometheus::Counter>& storage_wal_sync_seconds;
  prometheus::Family<prometheus::Counter>& storage_stall_seconds;
  prometheus::Family<prometheus::Counter>& process_cpu_seconds;
  prometheus::Family<prometheus::Gauge>& process_resident_memory;
  prometheus::Family<prometheus::Gauge>& process_virtual_memory;
  prometheus::Family<prometheus::Gauge>& process_open_fds;
  prometheus::Family<prometheus::Gauge>& process_start_time;
};

// Histogram buckets for request latencies, in seconds (0.5 ms to 10 s).
const prometheus::Histogram::BucketBoundaries& Buckets();
// Buckets for enqueue-to-delivery times, which include waiting in a backlog (10 ms to 6 h).
const prometheus::Histogram::BucketBoundaries& BacklogBuckets();

}  // namespace triage::daemon
