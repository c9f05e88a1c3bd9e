#include "daemon/metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <prometheus/text_serializer.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

#include "router/message.h"

namespace triage::daemon {
Metrics::Metrics()
    : registry(std::make_shared<prometheus::Registry>()),
      ingest_requests(prometheus::BuildCounter()
                          .Name("triage_ingest_requests_total")
                          .Help("Webhook requests answered, by source and HTTP status")
                          .Register(*registry)),
      ingest_bytes(prometheus::BuildCounter()
                       .Name("triage_ingest_received_bytes_total")
                       .Help("Webhook body bytes received, by source")
                       .Register(*registry)),
      ingest_messages(prometheus::BuildCounter()
                          .Name("triage_ingest_messages_total")
                          .Help("Messages in accepted webhooks, by source and outcome "
                                "(stored, duplicate)")
                          .Register(*registry)),
      ingest_latency(prometheus::BuildHistogram()
                         .Name("triage_ingest_request_duration_seconds")
                         .Help("Time from a whole request read to its answer, durable write "
                               "included, by source")
                         .Register(*registry)),
      ingest_events(prometheus::BuildCounter()
                        .Name("triage_ingest_events_total")
                        .Help("Platform events received, by source and kind (mention, reply, "
                              "direct_message, favorite, status, ...)")
                        .Register(*registry)),
      ingest_ignored(prometheus::BuildCounter()
                         .Name("triage_ingest_events_ignored_total")
                         .Help("Events not routed, by source and reason (own_account, "
                               "not_a_message, no_content, unsupported)")
                         .Register(*registry)),
      signature_failures(prometheus::BuildCounter()
                             .Name("triage_ingest_signature_failures_total")
                             .Help("Requests refused for a missing or wrong signature or verify "
                                   "token, by source")
                             .Register(*registry)),
      routed(prometheus::BuildCounter()
                 .Name("triage_router_messages_routed_total")
                 .Help("Stored messages by owner team, level and the rule that chose the team")
                 .Register(*registry)),
      feedback_requests(prometheus::BuildCounter()
                            .Name("triage_feedback_requests_total")
                            .Help("Helpdesk feedback webhooks (POST /feedback/<name>) by feedback and HTTP status")
                            .Register(*registry)),
      feedback_labels(prometheus::BuildCounter()
                          .Name("triage_feedback_labels_total")
                          .Help("Ticket updates from helpdesks by feedback and outcome (stored, "
                                "unknown_ticket: not created here or older than the origin window, "
                                "no_label: nothing that maps to a label)")
                          .Register(*registry)),
      labels_stored(prometheus::BuildGauge()
                        .Name("triage_storage_labels")
                        .Help("Messages holding a label from an agent's decision (triagectl labels export)")
                        .Register(*registry)),
      http_connections(prometheus::BuildCounter()
                           .Name("triage_http_connections_total")
                           .Help("Connections by listener and outcome (accepted, rejected_limit)")
                           .Register(*registry)),
      queue_entries(prometheus::BuildGauge()
                        .Name("triage_storage_queue_entries")
                        .Help("Entries waiting or in flight, by destination, team and level")
                        .Register(*registry)),
      queue_oldest_age(prometheus::BuildGauge()
                           .Name("triage_storage_oldest_entry_age_seconds")
                           .Help("Age of the oldest queued entry, by destination and level (0 when "
                                 "none)")
                           .Register(*registry)),
      queue_sla_at_risk(prometheus::BuildGauge()
                            .Name("triage_storage_sla_at_risk_entries")
                            .Help("Queued owner entries in the last quarter of their SLA, by "
                                  "destination, team and level (counted in 10 s steps)")
                            .Register(*registry)),
      queue_sla_overdue(prometheus::BuildGauge()
                            .Name("triage_storage_sla_overdue_entries")
                            .Help("Queued owner entries past their SLA deadline, by destination, "
                                  "team and level (counted in 10 s steps)")
                            .Register(*registry)),
      dead_letters(prometheus::BuildGauge()
                       .Name("triage_storage_dead_letters")
                       .Help("Entries in the dead-letter set")
                       .Register(*registry)),
      delivery_attempts(prometheus::BuildCounter()
                            .Name("triage_delivery_attempts_total")
                            .Help("Delivery attempts by destination and outcome (delivered, "
                                  "retry, throttled, dead_letter)")
                            .Register(*registry)),
      delivery_latency(prometheus::BuildHistogram()
                           .Name("triage_delivery_latency_seconds")
                           .Help("Time from enqueue to a successful delivery, by destination")
                           .Register(*registry)),
      delivery_sla(prometheus::BuildCounter()
                       .Name("triage_delivery_sla_total")
                       .Help("Tickets delivered to their owner team, by destination, level and "
                             "outcome (met: before the level's SLA deadline, breached: after)")
                       .Register(*registry)),
      attempt_latency(prometheus::BuildHistogram()
                          .Name("triage_delivery_attempt_duration_seconds")
                          .Help("Duration of one delivery attempt, by destination")
                          .Register(*registry)),
      destination_paused(prometheus::BuildGauge()
                             .Name("triage_delivery_destination_paused")
                             .Help("1 while a destination is paused after failures or a "
                                   "Retry-After, by destination")
                             .Register(*registry)),
      delivery_in_flight(prometheus::BuildGauge()
                             .Name("triage_delivery_in_flight")
                             .Help("Delivery requests in flight, by destination")
                             .Register(*registry)),
      rate_limit_waits(prometheus::BuildCounter()
                           .Name("triage_delivery_rate_limit_waits_total")
                           .Help("Times a delivery worker waited for the destination's token "
                                 "bucket, by destination")
                           .Register(*registry)),
      helpdesk_open(prometheus::BuildGauge()
                        .Name("triage_helpdesk_open_tickets")
                        .Help("Open tickets in a team's group at a helpdesk, as last counted there "
                              "(count_interval), by destination and team")
                        .Register(*registry)),
      helpdesk_open_counted(prometheus::BuildGauge()
                                .Name("triage_helpdesk_open_tickets_counted_timestamp_seconds")
                                .Help("When triage_helpdesk_open_tickets was last counted, by "
                                      "destination and team (unix seconds)")
                                .Register(*registry)),
      helpdesk_solved(prometheus::BuildGauge()
                          .Name("triage_helpdesk_solved_last_hour")
                          .Help("Tickets of a team's group solved at a helpdesk in the last hour, as last counted "
                                "(count_interval; helpdesks that can tell), by destination and team")
                          .Register(*registry)),
      acknowledgements(prometheus::BuildCounter()
                           .Name("triage_acknowledgements_total")
                           .Help("Acknowledgements to customers by reply destination, platform and outcome: sent; "
                                 "skipped as already_acknowledged, too_late or off; failed as window_closed, "
                                 "duplicate, not_allowed, recipient, credentials, refused or unknown (sent or not, "
                                 "the answer was lost: never sent again)")
                           .Register(*registry)),
      breaker_state(prometheus::BuildGauge()
                        .Name("triage_delivery_breaker_state")
                        .Help("Circuit breaker of a destination: 0 closed, 1 open, 2 half-open")
                        .Register(*registry)),
      config_reloads(prometheus::BuildCounter()
                         .Name("triage_config_reloads_total")
                         .Help("Config reloads on SIGHUP, by outcome (applied, refused)")
                         .Register(*registry)),
      quarantined(prometheus::BuildCounter()
                      .Name("triage_ingest_quarantined_total")
                      .Help("Requests kept raw because the parser could not read all of them, by source")
                      .Register(*registry)),
      quarantine_replays(prometheus::BuildCounter()
                             .Name("triage_quarantine_replays_total")
                             .Help("Quarantined requests replayed, by outcome (released, still_unreadable, "
                                   "source_not_configured, error)")
                             .Register(*registry)),
      quarantine_entries(prometheus::BuildGauge()
                             .Name("triage_quarantine_entries")
                             .Help("Requests in the quarantine (RocksDB's estimate)")
                             .Register(*registry)),
      tls_certificate_expiry(prometheus::BuildGauge()
                                 .Name("triage_tls_certificate_expiry_timestamp_seconds")
                                 .Help("When the certificate the ingest listener serves expires (server.tls)")
                                 .Register(*registry)),
      storage_live_bytes(prometheus::BuildGauge().Name("triage_storage_live_bytes").Help("Bytes of RocksDB SST files, every column family").Register(*registry)),
      storage_pending_compaction_bytes(prometheus::BuildGauge().Name("triage_storage_pending_compaction_bytes").Help("RocksDB's estimate of bytes compaction still has to rewrite").Register(*registry)),
      storage_writes_stopped(prometheus::BuildGauge().Name("triage_storage_writes_stopped").Help("1 while RocksDB stops writes (a write stall)").Register(*registry)),
      storage_available(prometheus::BuildGauge().Name("triage_storage_available").Help("1 while storage takes writes; 0 after a failed write or background error (a full disk) until it resumes").Register(*registry)),
      storage_errors(prometheus::BuildCounter().Name("triage_storage_errors_total").Help("Failed storage writes and RocksDB background errors").Register(*registry)),
      storage_recoveries(prometheus::BuildCounter().Name("triage_storage_recoveries_total").Help("Times storage became available again after an error").Register(*registry)),
      storage_delayed_write_rate(prometheus::BuildGauge().Name("triage_storage_delayed_write_rate_bytes").Help("Write rate RocksDB allows while it slows writes down (0 when it does not)").Register(*registry)),
      storage_wal_syncs(prometheus::BuildCounter().Name("triage_storage_wal_syncs_total").Help("WAL syncs (one per group commit)").Register(*registry)),
      storage_wal_sync_seconds(prometheus::BuildCounter().Name("triage_storage_wal_sync_seconds_total").Help("Time spent in WAL syncs").Register(*registry)),
      storage_stall_seconds(prometheus::BuildCounter().Name("triage_storage_write_stall_seconds_total").Help("Time writes waited on RocksDB stalls").Register(*registry)),
      process_cpu_seconds(prometheus::BuildCounter().Name("process_cpu_seconds_total").Help("User and system CPU time spent").Register(*registry)),
      process_resident_memory(prometheus::BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory size").Register(*registry)),
      process_virtual_memory(prometheus::BuildGauge().Name("process_virtual_memory_bytes").Help("Virtual memory size").Register(*registry)),
      process_open_fds(prometheus::BuildGauge().Name("process_open_fds").Help("Open file descriptors").Register(*registry)),
      process_start_time(prometheus::BuildGauge().Name("process_start_time_seconds").Help("Start time of the process since the Unix epoch").Register(*registry)) {}

void Metrics::Mirror(prometheus::Family<prometheus::Counter>& family, double total) {
  std::lock_guard lock(mirror_mu_);
  double& last = mirrored_[&family];
  if (total > last) family.Add({}).Increment(total - last);
  else family.Add({});  // present from the first scrape
  last = std::max(last, total);
}

namespace {

// Fields of /proc/self/stat (proc(5)): utime 14, stime 15 and starttime 22 in clock ticks,
// vsize 23 in bytes, rss 24 in pages. Fields are counted after the ")" ending the command name.
struct ProcessStat {
  double cpu_seconds = 0, start_seconds = 0, virtual_bytes = 0, resident_bytes = 0;
  int64_t open_fds = 0;
};

ProcessStat ReadProcessStat() {
  ProcessStat p;
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return p;
  std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  // fields[0] is field 3 (state).
  auto field = [&](size_t n) {
    double v = 0;
    return n - 3 < fields.size() && absl::SimpleAtod(fields[n - 3], &v) ? v : 0.0;
  };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  p.cpu_seconds = (field(14) + field(15)) / ticks;
  p.virtual_bytes = field(23);
  p.resident_bytes = field(24) * static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream uptime("/proc/uptime");
  double up = 0;
  uptime >> up;
  p.start_seconds = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()) - up + field(22) / ticks;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++p.open_fds;
  }
  return p;
}

}  // namespace

namespace {

// Every series `family` has shown, at 0: what a scrape sets again stays as set, and a queue the
// index no longer holds (handed to another node, on a cluster) reads 0 rather than its last
// value, so that the nodes' series sum to the cluster's.
void ZeroAll(prometheus::Family<prometheus::Gauge>& family) {
  for (const prometheus::MetricFamily& collected : family.Collect()) {
    for (const prometheus::ClientMetric& metric : collected.metric) {
      prometheus::Labels labels;
      for (const auto& label : metric.label) labels[label.name] = label.value;
      family.Add(labels).Set(0);
    }
  }
}

}  // namespace

std::string Metrics::Render(storage::Store& store) {
  std::lock_guard lock(render_mu_);
  const absl::Time now = absl::Now();
  for (prometheus::Family<prometheus::Gauge>* family :
       {&queue_entries, &queue_sla_at_risk, &queue_sla_overdue, &queue_oldest_age}) {
    ZeroAll(*family);
  }
  for (const storage::QueueDepth& depth : store.Depths(now)) {
    const prometheus::Labels labels{{"destination", depth.destination},
                                    {"team", depth.team},
                                    {"level", std::string(router::LevelName(depth.level))}};
    queue_entries.Add(labels).Set(static_cast<double>(depth.entries));
    queue_sla_at_risk.Add(labels).Set(static_cast<double>(depth.sla_at_risk));
    queue_sla_overdue.Add(labels).Set(static_cast<double>(depth.sla_overdue));
  }
  for (const storage::QueueDepth& oldest : store.OldestEntries()) {
    queue_oldest_age
        .Add({{"destination", oldest.destination}, {"level", std::string(router::LevelName(oldest.level))}})
        .Set(std::max(0.0, absl::ToDoubleSeconds(now - absl::FromUnixMillis(oldest.oldest_enqueued_unix_ms))));
  }
  dead_letters.Add({}).Set(static_cast<double>(store.DeadLetterCount()));
  quarantine_entries.Add({}).Set(static_cast<double>(store.QuarantineEstimate()));
  labels_stored.Add({}).Set(static_cast<double>(store.LabelCount()));
  const storage::Store::StorageStats stats = store.Stats();
  storage_live_bytes.Add({}).Set(static_cast<double>(stats.live_bytes));
  storage_pending_compaction_bytes.Add({}).Set(static_cast<double>(stats.pending_compaction_bytes));
  storage_writes_stopped.Add({}).Set(stats.writes_stopped ? 1 : 0);
  const storage::StorageHealth health = store.Health();
  storage_available.Add({}).Set(health.available ? 1 : 0);
  Mirror(storage_errors, static_cast<double>(health.errors));
  Mirror(storage_recoveries, static_cast<double>(health.recoveries));
  storage_delayed_write_rate.Add({}).Set(static_cast<double>(stats.delayed_write_rate));
  Mirror(storage_wal_syncs, static_cast<double>(stats.wal_syncs));
  Mirror(storage_wal_sync_seconds, stats.wal_sync_seconds);
  Mirror(storage_stall_seconds, static_cast<double>(stats.stall_micros) / 1e6);
  const ProcessStat process = ReadProcessStat();
  Mirror(process_cpu_seconds, process.cpu_seconds);
  process_resident_memory.Add({}).Set(process.resident_bytes);
  process_virtual_memory.Add({}).Set(process.virtual_bytes);
  process_open_fds.Add({}).Set(static_cast<double>(process.open_fds));
  process_start_time.Add({}).Set(process.start_seconds);
  return prometheus::TextSerializer().Serialize(registry->Collect());
}

const prometheus::Histogram::BucketBoundaries& Buckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

const prometheus::Histogram::BucketBoundaries& BacklogBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600};
  return kBuckets;
}

}  // namespace triage::daemon
