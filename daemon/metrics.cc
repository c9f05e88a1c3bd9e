#include "daemon/metrics.h"

#include <prometheus/text_serializer.h>

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
      breaker_state(prometheus::BuildGauge()
                        .Name("triage_delivery_breaker_state")
                        .Help("Circuit breaker of a destination: 0 closed, 1 open, 2 half-open")
                        .Register(*registry)),
      config_reloads(prometheus::BuildCounter()
                         .Name("triage_config_reloads_total")
                         .Help("Config reloads on SIGHUP, by outcome (applied, refused)")
                         .Register(*registry)) {}

std::string Metrics::Render(storage::Store& store) {
  for (const storage::QueueDepth& depth : store.Depths()) {
    queue_entries
        .Add({{"destination", depth.destination},
              {"team", depth.team},
              {"level", std::string(router::LevelName(depth.level))}})
        .Set(static_cast<double>(depth.entries));
  }
  // Series seen once stay, at 0, when their queue empties.
  for (const prometheus::MetricFamily& collected : queue_oldest_age.Collect()) {
    for (const prometheus::ClientMetric& metric : collected.metric) {
      prometheus::Labels labels;
      for (const auto& label : metric.label) labels[label.name] = label.value;
      queue_oldest_age.Add(labels).Set(0);
    }
  }
  const absl::Time now = absl::Now();
  for (const storage::QueueDepth& oldest : store.OldestEntries()) {
    queue_oldest_age
        .Add({{"destination", oldest.destination}, {"level", std::string(router::LevelName(oldest.level))}})
        .Set(std::max(0.0, absl::ToDoubleSeconds(now - absl::FromUnixMillis(oldest.oldest_enqueued_unix_ms))));
  }
  dead_letters.Add({}).Set(static_cast<double>(store.DeadLetterCount()));
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
