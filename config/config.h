#pragma once

#include "absl/strings/string_view.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config/network.h"
#include "router/sources/generic/generic_source.h"
#include "router/router.h"
#include "router/scorer.h"
#include "router/source.h"
#include "router/destinations/destination_type.h"
#include "router/sources/source_type.h"
#include "router/text_model.h"

namespace triage::config {

struct ListenOptions {
  std::string address;
  uint16_t port = 0;  // 0: the kernel picks one (tests); the bound port is reported
};

// HTTPS on the ingest listener. The files are read at load (start, --check-config and every
// reload), so a renewed certificate is served after `systemctl reload`, to new connections.
struct TlsOptions {
  std::string certificate_file;  // PEM: the certificate, then its chain
  std::string key_file;          // PEM: its private key (readable by the service only)
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string certificate_pem;   // read from the files
  std::string key_pem;
  bool enabled() const { return !certificate_file.empty(); }
  bool operator==(const TlsOptions&) const = default;
};

struct ServerOptions {
  ListenOptions listen{"127.0.0.1", 8080};
  TlsOptions tls;
  // Peers whose X-Forwarded-For is believed (a reverse proxy in front): the client is the
  // rightmost address of that header not itself in this list. Others are their own client.
  std::vector<IpNetwork> trusted_proxies;
  int io_threads = 2;
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  absl::Duration read_timeout = absl::Seconds(10);   // to receive one whole request
  absl::Duration idle_timeout = absl::Seconds(60);   // keep-alive connection with no request
  // On SIGTERM: how long requests in flight and deliveries in flight may take to finish. Below
  // systemd's TimeoutStopSec (30 s), so the stop is clean, whatever the backlog.
  absl::Duration shutdown_timeout = absl::Seconds(20);
  int max_connections = 1024;
  router::PayloadLimits payload;
};

struct AdminOptions {
  ListenOptions listen{"127.0.0.1", 9464};
  // The bearer token of the /v1 admin API (from value, env or file). Without one, the
  // endpoints that change something answer 403.
  std::string token;
  // Lets GET /v1/... answer without the token (e.g. on a loopback-only admin listener).
  bool read_without_token = false;
};

// The JetStream backend's cluster (storage.backend: jetstream).
struct JetStreamStorageOptions {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string credentials_file;      // a NATS .creds file; empty: none
  std::string ca_file;               // roots for the servers' TLS certificates; empty: none
  int64_t replicas = 3;              // of every stream and bucket
  std::string prefix = "TRIAGE";     // of every stream, subject and bucket name
  absl::Duration publish_timeout = absl::Seconds(3);  // then 503: an election takes 4-9 s
  std::string node;  // this node's name among the members; empty: host-pid-random
  // A queue's owner renews its lease every lease_ttl/6; another node takes the queue over at
  // most lease_ttl after the owner's last renewal, and the owner stops at half of it.
  absl::Duration lease_ttl = absl::Seconds(6);
  bool operator==(const JetStreamStorageOptions&) const = default;
};

struct StorageOptions {
  // Where the records live: "rocksdb" (this host's disk, at `path`) or "jetstream" (a NATS
  // cluster, replicated). Changing it needs a restart, like everything under storage.
  std::string backend = "rocksdb";
  JetStreamStorageOptions jetstream;
  std::string path = "./data/db";
  absl::Duration dedup_window = absl::Hours(24 * 8);
  // Requests the parser could not read are kept raw this long, for `triagectl replay`.
  absl::Duration quarantine_retention = absl::Hours(24 * 14);
  int64_t max_queued_entries = 1'000'000;
  int64_t max_pending_requests = 10'000;
  absl::Duration aging_step = absl::Minutes(30);
  bool operator==(const StorageOptions&) const = default;
};

struct SourceOptions {
  std::string name;  // served at /webhooks/<name>
  const router::SourceType* type = nullptr;  // from the registry (router/sources/registry.cc)
  router::Settings settings;  // the type's keys, secrets resolved from value, env or file
  // Derived from the settings by the type, once, at load.
  std::vector<router::SignatureCheck> signature;
  router::HandshakeSpec handshake;
  // When not empty, only clients in these networks may post to this source; others get 403.
  // X and Telegram publish the ranges they send from.
  std::vector<IpNetwork> allow_from;
  router::ParseContext parse;        // brand ids, known authors, default reach, limits
};

// When a destination stops being called (see daemon::CircuitBreaker).
struct BreakerOptions {
  double failure_ratio = 0.5;  // opens when this share of the recent calls failed...
  int window = 20;             // ...among the last `window` calls...
  int min_calls = 10;          // ...once at least this many are in the window
  absl::Duration open_for = absl::Seconds(30);  // first pause; doubles per reopening
  absl::Duration open_max = absl::Minutes(10);

  bool operator==(const BreakerOptions&) const = default;
};

// The destination whose tickets a destination's alerts link to (DestinationOptions::ticket_link).
struct TicketLink {
  std::string destination;
  const router::DestinationType* type = nullptr;
  std::string url;
  router::Settings settings;
  std::set<std::string> teams;  // the teams that deliver to it
  bool operator==(const TicketLink&) const = default;
};

struct DestinationOptions {
  std::string name;
  const router::DestinationType* type = nullptr;  // router/destinations/<type>/
  router::Settings settings;  // the type's own keys (path, secret, credentials, ...), secrets resolved
  std::string url;      // http:// or https://: the webhook, the helpdesk's base URL, the Slack hook
  // informed: join (one ticket or alert per message; informed teams join the owner's) or
  // separate (each team its own). The type's default.
  bool join_informed = true;
  std::string ca_file;  // https: extra trusted CAs (PEM); system CAs otherwise

  int concurrency = 2;   // requests in flight at most
  double rate = 0;       // requests a second (token bucket), 0 for no limit
  double burst = 1;      // requests the bucket saves up
  BreakerOptions breaker;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(15);
  int max_attempts = 12;
  absl::Duration backoff_initial = absl::Seconds(1);
  absl::Duration backoff_max = absl::Minutes(30);
  absl::Duration retry_after_max = absl::Hours(1);  // a longer Retry-After is cut to this
  // The longest a failing destination waits before it is tried again (a failure pause or an
  // open breaker): its recovery is noticed within this, however long the outage. Each entry's
  // own back-off (backoff_initial .. backoff_max) is separate.
  absl::Duration probe_max = absl::Seconds(30);

  // Helpdesk tickets and Slack messages (the keys the type's ticket_keys() takes).
  std::string subject_template;  // defaults per type (its defaults())
  std::string body_template;
  std::string follow_up_template;  // the note a follow-up adds to its thread's ticket
  std::map<std::string, int64_t> group_ids;  // team -> the helpdesk group it works in
  // team -> the helpdesk users (ids or e-mail addresses) who follow the tickets it is informed of
  std::map<std::string, std::vector<std::string>> watchers;
  // Helpdesk field (Zendesk: numeric id, Freshdesk: cf_ name, ...) -> template.
  std::vector<std::pair<std::string, std::string>> custom_fields;

  // Only entries at or above `min_level`, or whose author's reach score (0-100, as in routing
  // rules) is at least `min_reach`, are queued for this destination (e.g. Slack alerts).
  // Neither set: everything.
  std::optional<router::Level> min_level;
  std::optional<int64_t> min_reach;
  bool Accepts(router::Level level, int reach) const;

  // Alerts that link to the thread's ticket in another destination (`ticket_link`: a Slack
  // alert names the helpdesk ticket). An alert whose team delivers there waits up to
  // `ticket_link_wait` after its message arrived for that ticket to exist, then goes without.
  std::optional<TicketLink> ticket_link;
  absl::Duration ticket_link_wait = absl::Seconds(30);

  // The teams that deliver here (from teams.*.destinations).
  std::vector<std::string> teams;
  // How often the open tickets of each team's group are counted at the helpdesk (its
  // CountOpenRequest), in the background at the destination's pace; 0: never.
  absl::Duration count_interval = absl::ZeroDuration();

  bool operator==(const DestinationOptions&) const = default;
};

// A helpdesk telling triaged what an agent decided about a ticket triaged created: served at
// POST /feedback/<name> on the ingest listener. The ticket's priority becomes the message's
// level label, its group the team label (through the destination's group_ids), and its tags
// the complaint label.
struct FeedbackOptions {
  std::string name;
  const router::DestinationType* type = nullptr;  // a type whose feedback_auth() is not kNone
  std::string destination;  // the destination whose tickets it reports on (same type)
  // zendesk: the webhook's signing secret (X-Zendesk-Webhook-Signature); freshdesk: a token
  // the automation sends in `token_header`.
  std::string secret;
  std::string token_header = "X-Triage-Token";
  std::vector<std::string> complaint_tags = {"complaint"};
  std::vector<std::string> not_complaint_tags = {"not_complaint"};
  absl::Duration max_clock_skew = absl::Minutes(5);  // zendesk: signature timestamps older are refused

  bool operator==(const FeedbackOptions&) const = default;
};

// What a team tells the customer when their message arrives (teams.<team>.acknowledge): an
// automated reply in the conversation they wrote in, once per conversation within `once_per`,
// naming their place in line and the expected wait when both are known.
struct AcknowledgeOptions {
  // Reply destinations (types that send replies): a message goes to the first that can answer
  // it (its platform, kind and channel).
  std::vector<std::string> via;
  std::vector<router::Level> levels;  // empty: every level
  std::optional<bool> complaint;      // unset: complaints or not
  std::vector<std::string> channels = {"private"};  // public replies only when listed
  std::vector<std::string> platforms;               // empty: any `via` can answer
  absl::Duration once_per = absl::Hours(24);
  // An acknowledgement not sent this long after its message arrived is dropped: a late "we got
  // your message" helps nobody, and Meta's and WhatsApp's 24-hour windows would refuse it.
  absl::Duration max_delay = absl::Hours(1);
  // Templates: the ticket's fields, and {{ahead}}, {{position}}, {{expected_wait}},
  // {{opens_at}} and {{reference}}. `text` when every figure it names is known, `closed_text`
  // outside `hours`, `fallback` (which names no figure) otherwise.
  std::string text, closed_text, fallback;
  std::optional<router::TimeWindow> hours;  // business hours; none: always open
  // Tickets the team answers an hour, when neither the helpdesk nor triaged's own deliveries
  // have measured it yet; 0: unknown.
  double tickets_per_hour = 0;
};

// The figures an acknowledgement template may name besides the ticket's fields, and those a
// fallback cannot (they may be unknown).
inline const std::vector<std::string> kAcknowledgeFields = {"ahead", "position", "expected_wait", "opens_at",
                                                            "reference"};
inline const std::vector<std::string> kAcknowledgeFigures = {"ahead", "position", "expected_wait"};

struct TeamOptions {
  std::string name;
  std::vector<std::string> destinations;
  std::optional<AcknowledgeOptions> acknowledge;
};

struct Config {
  std::string log_level = "info";
  ServerOptions server;
  AdminOptions admin;
  StorageOptions storage;
  std::vector<SourceOptions> sources;
  router::ScorerOptions scoring;
  router::RouterOptions routing;
  // A follow-up in a conversation routed within this window goes to the same owner team.
  absl::Duration conversation_window = absl::Hours(72);
  std::vector<TeamOptions> teams;
  std::vector<DestinationOptions> destinations;
  std::vector<FeedbackOptions> feedback;
};

// Loads and validates a YAML config. On failure the status message holds every error found,
// one per line, as `file:line:col: key.path: message`. Unknown keys are errors. Secrets given
// as {env: NAME} or {file: PATH} are resolved here; a missing one is an error.
// How much a load checks. Compiling the lexicon and the rules' regexes (Hyperscan) takes about
// a second: the daemon's start skips it here and compiles them once for its pipeline while
// RocksDB recovers (a pattern Hyperscan refuses fails the start then, without a file
// position). --check-config (systemd's ExecStartPre) and reloads compile them here, with
// positions.
//
// Secrets that the unit hands over as credentials ({file: /run/credentials/triaged.service/
// secrets_NAME}, from LoadCredential=secrets:/etc/triaged/credentials) exist only inside the
// service. Outside it, `credentials_dir` names the folder they come from: such a file is then
// read as credentials_dir/NAME.
struct LoadOptions {
  bool compile_patterns = true;
  std::string credentials_dir;
};
absl::StatusOr<Config> LoadConfigFile(const std::string& path, LoadOptions options = {});
absl::StatusOr<Config> LoadConfigString(absl::string_view yaml, absl::string_view file_name,
                                        LoadOptions options = {});

// The config compiled into the binary (config/default.yaml): used when no --config is given.
absl::string_view DefaultConfigYaml();
// The word valences compiled into the binary (config/sentiment_lexicon.tsv, from VADER), and
// the lexicon parsed from them once.
absl::string_view SentimentLexiconText();
std::shared_ptr<const router::SentimentLexicon> DefaultSentimentLexicon();

// Reads a model file written by `triagectl train` and checks that it predicts `label`. The
// error names the file and what is wrong (missing, not a model, another label).
absl::StatusOr<std::shared_ptr<const router::TextModel>> LoadModelFile(const std::string& path,
                                                                       router::ModelLabel label);

// "250ms", "10s", "15m", "4h", "8d" and combinations absl understands ("1h30m").
bool ParseDurationText(absl::string_view text, absl::Duration* out);

}  // namespace triage::config
