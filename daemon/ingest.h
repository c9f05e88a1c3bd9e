#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "config/config.h"
#include "daemon/blocking.h"
#include "daemon/http.h"
#include "absl/synchronization/mutex.h"
#include "daemon/metrics.h"
#include "daemon/pacing.h"
#include "router/router.h"
#include "router/source.h"
#include "storage/store.h"

namespace triage::daemon {

// Everything ingest decides with, built from one config and swapped whole on reload.
struct Pipeline {
  static absl::StatusOr<std::shared_ptr<const Pipeline>> Create(const config::Config& config);

  std::vector<config::SourceOptions> sources;
  std::shared_ptr<const router::Triager> triager;
  absl::Duration conversation_window;
  std::vector<config::IpNetwork> trusted_proxies;  // server.trusted_proxies
  std::vector<config::DestinationOptions> destinations;
  std::vector<config::TeamOptions> teams;
  // Point into `destinations` and `teams`, which are never resized after Create.
  absl::flat_hash_map<std::string, std::vector<const config::DestinationOptions*>> team_destinations;
  // The teams that acknowledge messages: their block and its reply destinations.
  struct Acknowledging {
    const config::AcknowledgeOptions* options = nullptr;
    std::vector<const config::DestinationOptions*> via;
    // The team's helpdesks that keep tickets: a note on the ticket says what the customer was
    // told.
    absl::flat_hash_set<std::string> notes;
  };
  absl::flat_hash_map<std::string, Acknowledging> acknowledging;
};

// Who sent a request: its client's address (trusted_proxies applied) and the request's id
// (X-Request-Id when given, else generated), both in every log line about it.
struct Caller {
  config::IpAddress address;
  std::string request_id;
};

// The request's X-Request-Id when it is a token of at most 64 [A-Za-z0-9._-], else a new one
// (16 hex digits); answered back in X-Request-Id.
std::string RequestId(const Request& request);

// What became of one quarantined request at a replay: released (read whole, routed, removed),
// still_unreadable (what could be read is routed; it stays), source_not_configured, error.
struct ReplayOutcome {
  uint64_t id = 0;
  std::string outcome;
  int accepted = 0;
  int duplicates = 0;
  std::string detail;
};

// Whether `request` passes a source's signature checks (router::SignatureCheck: the first that
// applies decides; none applying is a refusal).
bool SignatureValid(const std::vector<router::SignatureCheck>& checks, const Request& request);

config::IpAddress FromAsio(const asio::ip::address& address);
// The client of a request: the TCP peer, or, when the peer is one of `trusted_proxies`, the
// rightmost X-Forwarded-For address that is not itself a trusted proxy (a proxy appends the
// address it received from; what a client writes there itself is further left and ignored).
config::IpAddress ClientAddress(const asio::ip::address& peer, const Request& request,
                                const std::vector<config::IpNetwork>& trusted_proxies);

// The one mapping from a status code to the HTTP status a network sees at ingress.
http::status IngressStatus(const absl::Status& status);

// Serves /webhooks/<source>. POST: verify the signature on the raw bytes (generic: hex HMAC in
// the configured header; X: base64 HMAC in X-Twitter-Webhooks-Signature[-OAuth2]; Meta: hex
// HMAC in X-Hub-Signature-256), parse every event, score and route every customer message,
// store the whole request durably (group commit), and only then answer 200. Any failure
// answers with nothing stored. GET: the X CRC and the Meta handshake. Thread-safe: one
// instance serves all connections.
class Ingest {
 public:
  // Conversation owners are read from memory on the I/O thread, from the disk on `pool`.
  Ingest(std::shared_ptr<const Pipeline> pipeline, storage::Store& store, BlockingPool& pool,
         Metrics& metrics);

  // `peer` is the TCP peer; the client is found from it and server.trusted_proxies.
  asio::awaitable<Response> Handle(Request& request, const asio::ip::address& peer);
  // Swaps in a new pipeline (sources, lexicon, rules) atomically: requests already running
  // finish with the one they started with, the next ones use the new one.
  void Swap(std::shared_ptr<const Pipeline> pipeline) { pipeline_.store(std::move(pipeline)); }
  // Parses quarantined requests again with the running version and config, and routes what
  // now reads; those read whole leave the quarantine.
  asio::awaitable<std::vector<ReplayOutcome>> Replay(std::vector<storage::Store::Quarantined> items);

 private:
  asio::awaitable<Response> HandleSource(const Pipeline& pipeline, const config::SourceOptions& source,
                                         Request& request, const Caller& caller);
  // Triages `messages`, stores them (and `quarantine`) in one synced write, counts them.
  asio::awaitable<storage::IngestResult> RouteAndStore(const Pipeline& pipeline, const config::SourceOptions& source,
                                                       std::vector<router::Message> messages, absl::Time received_at,
                                                       std::optional<storage::QuarantineRecord> quarantine);
  // GET: the X CRC and the Meta verification handshake.
  Response Handshake(const config::SourceOptions& source, const Request& request,
                     const Caller& caller);
  void CountEvents(const config::SourceOptions& source, const router::ParseResult& parsed);
  Response Answer(absl::string_view source, const absl::Status& status, const Caller& caller);
  // One log line per key a second (refusals, ignored content, drops): nullopt to stay quiet.
  std::optional<int64_t> AdmitLog(const std::string& key);

  std::atomic<std::shared_ptr<const Pipeline>> pipeline_;
  storage::Store& store_;
  BlockingPool& pool_;
  Metrics& metrics_;
  absl::Mutex log_mu_;
  LogLimiter log_limiter_ ABSL_GUARDED_BY(log_mu_){absl::Seconds(1)};
};

}  // namespace triage::daemon
