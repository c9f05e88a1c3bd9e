#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "daemon/acknowledge.h"
#include "daemon/blocking.h"
#include "daemon/grouped.h"
#include "daemon/http.h"
#include "daemon/http_client.h"
#include "daemon/metrics.h"
#include "daemon/pacing.h"
#include "storage/store.h"

namespace triage::daemon {

// What one delivery attempt came to. Decided in one place (ClassifyResponse) for HTTP.
struct Attempt {
  enum class Kind { kDelivered, kRetry, kPermanent };
  Kind kind = Kind::kRetry;
  std::string detail;  // status and a bounded snippet, or the transport error
  int status = 0;      // the HTTP status; 0 when there was no answer
  int requests = 1;    // HTTP requests the attempt made (a lookup or the requester come first)
  std::optional<absl::Duration> retry_after;  // the helpdesk's Retry-After
  bool throttled = false;  // 429: the helpdesk is up but over its quota (not a breaker failure)
  // A 2xx answer said the quota is spent (X-Rate-Limit-Remaining: 0 and the like) and when it
  // resets: the destination waits that long before its next request.
  std::optional<absl::Duration> quota_reset;
  // The thread's ticket to record with the ack: one the helpdesk created (`ticket_created`),
  // or the one a follow-up raised.
  std::string remote_ticket;
  bool ticket_created = false;
  // Why, in one word, when the destination's type read the answer (AnswerClass::reason), or
  // "unknown" when a reply may have been sent but its answer was lost.
  std::string reason;
};

// 2xx delivered; 408, 425, 429 and 5xx retried (Retry-After honoured, in seconds or as an
// HTTP date relative to `now`); every other status permanent. Redirects are not followed.
// Rate headers with nothing remaining (Zendesk X-Rate-Limit-Remaining / ratelimit-remaining
// with ratelimit-reset, Freshdesk X-RateLimit-Remaining with Retry-After) set quota_reset.
Attempt ClassifyResponse(const Response& response, absl::Time now);
// Transport failures (connect, TLS, timeout, reset) are always retried.
Attempt ClassifyTransportError(const boost::system::error_code& error, absl::string_view stage);
// "Retry-After: 120" or "Retry-After: Wed, 21 Oct 2026 07:28:00 GMT"; nullopt if unreadable.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

// Wait before the next attempt of an entry that has failed `attempts` times: full jitter
// over an exponential ceiling, initial * 2^(attempts-1), capped at `max`; never below
// `retry_after` (itself capped at `retry_after_max`).
absl::Duration RetryDelay(const config::DestinationOptions& options, uint32_t attempts,
                          std::optional<absl::Duration> retry_after, absl::BitGenRef random);

// The idempotency key of one delivery: stable for a (destination, message, team) so every
// retry of it carries the same key, distinct for anything else.
std::string DeliveryId(absl::string_view destination, absl::string_view message_key,
                       absl::string_view team);

// What the dispatcher read before a delivery.
struct Known {
  // The ticket of the lease's thread at this destination, when one exists (looked up only for
  // senders that want it).
  std::optional<storage::ThreadTicket> thread_ticket;
  // The page of the thread's ticket in the destination this one links to (ticket_link).
  std::string linked_ticket_url;
  // A reply entry: the acknowledgement to send (Acknowledger::Compose).
  std::optional<std::string> reply_text;
};

// Sends one leased entry to a destination. Implementations are used from one strand.
class Sender {
 public:
  virtual ~Sender() = default;
  virtual asio::awaitable<Attempt> Send(const storage::Lease& lease, const Known& known, int worker) = 0;
  virtual bool wants_remote_tickets() const { return false; }
  // The open tickets in `team`'s group at the helpdesk, on a connection of its own; nullopt
  // when the destination cannot count them (its type, or no group for the team), an error
  // when the helpdesk did not answer with a count.
  virtual asio::awaitable<absl::StatusOr<std::optional<int64_t>>> CountOpen(const std::string& team);
  // The tickets of `team`'s group solved in the last hour, the same way; nullopt when the type
  // cannot tell.
  virtual asio::awaitable<absl::StatusOr<std::optional<int64_t>>> CountSolved(const std::string& team);
  virtual bool CountsSolved(const std::string& /*team*/) const { return false; }
};

// Builds the sender of a destination from its type (router/destinations/<type>/): a file's
// lines are appended and fsynced on `pool`; every other type speaks HTTP.
// `clock` dates Retry-After answers and signatures.
absl::StatusOr<std::unique_ptr<Sender>> MakeSender(const config::DestinationOptions& options,
                                                   asio::any_io_executor executor, BlockingPool& pool,
                                                   const storage::Clock& clock);

// The delivery workers of one destination. `concurrency` coroutines on one strand each lease
// the best due entry, send it, and ack, retry later or dead-letter it. Before each request a
// worker passes three gates, all shared by every team that delivers here:
//   - the pause: a retryable failure pauses the whole destination (FailureStreak: exponential
//     in the destination's failure streak, capped at probe_max, at least the Retry-After it
//     sent), a spent quota until it resets;
//   - the circuit breaker (config::BreakerOptions, its pause capped at probe_max too): open
//     after too many failures, then one probe;
//   - the token bucket (rate, burst).
// The failure that starts a streak counts against its entry (attempts, the entry's own
// back-off, a dead letter after max_attempts). While the destination is failing, one attempt
// is out at a time and its failure is the destination's: the entry keeps its place and its
// attempt count. When no entry is due, the one due soonest goes early as the probe, so a
// recovery is noticed within probe_max. An entry that failed while the
// destination pauses is due when the pause ends, so the backlog leaves in priority order when
// the helpdesk recovers.
//
// Storage calls (leases, acks, retries, dead letters, pause records, ticket lookups) run on
// the blocking pool; the strand only waits for them. The workers' leases and plain acks go in
// groups (Grouped): what arrives while one group runs goes as the next, one lock and one write
// batch for all of it. New entries wake as many idle workers as there are entries.
//
// Owned through shared_ptr (make_shared): the workers and posted wake-ups hold it, so a
// dispatcher swapped out by a reload lives until its last attempt in flight has finished.
//
// Thread-safety: Wake, Stop and status from any thread; the rest runs on the strand.
class Dispatcher : public std::enable_shared_from_this<Dispatcher> {
 public:
  // `clock` decides pauses, back-off and the breaker (its timers wait in steady time).
  // `acknowledger` composes the reply entries' texts and hears of tickets delivered (null: no
  // acknowledgements).
  Dispatcher(asio::io_context& io, storage::Store& store, BlockingPool& pool,
             const storage::Clock& clock, config::DestinationOptions options,
             std::unique_ptr<Sender> sender, Metrics& metrics, Acknowledger* acknowledger = nullptr);

  const config::DestinationOptions& options() const { return options_; }
  // Reads the stored pauses (on the pool, until they can be read), then starts the workers.
  void Start();
  // `entries` may have become due: wakes that many idle workers (each one that leases wakes
  // the next while more are due), not every worker for every new entry.
  void Wake(size_t entries);
  // Stop leasing; attempts in flight finish, then the workers end. `removed`: the destination
  // left the config, so its paused and breaker gauges read 0 once the workers have ended
  // (they no longer page anyone).
  void Stop(bool removed = false);
  bool stopped() const { return running_.load() == 0; }
  // An operator's pause (admin API), stored durably (a synced write: call it off the I/O
  // threads); attempts in flight finish.
  absl::Status SetManualPause(bool paused);

  // The open tickets of a team's group at this helpdesk, as last counted (count_interval);
  // nullopt before the first count. Any thread.
  struct OpenCount {
    int64_t count = 0;
    absl::Time counted_at;
    // Tickets of the group solved in the hour before counted_at, when the helpdesk can tell.
    std::optional<int64_t> solved_last_hour;
  };
  std::optional<OpenCount> OpenTickets(const std::string& team) const;

  struct Status {
    bool manual_pause = false;
    absl::Time paused_until;  // a failure or Retry-After pause; InfinitePast when none
    CircuitBreaker::State breaker = CircuitBreaker::State::kClosed;
  };
  Status status() const;  // any thread

 private:
  // The gates an attempt passed, for its outcome.
  struct Tickets {
    uint64_t breaker = 0;
    uint64_t streak = 0;
  };
  asio::awaitable<void> Run();
  asio::awaitable<void> Worker(int index);
  // Counts each team's open tickets (and, where the helpdesk tells, those solved in the last
  // hour) every count_interval, a token each, while the destination is neither paused nor
  // failing and no delivery is due (deliveries take the tokens first).
  asio::awaitable<void> CountLoop();
  asio::awaitable<void> Deliver(storage::Lease lease, int index, Tickets tickets);
  // Before a reply entry is sent: its text, or false when it was settled without sending (too
  // late, already acknowledged, its outcome unknown after a restart) or the dispatcher stopped.
  asio::awaitable<bool> PrepareReply(const storage::Lease& lease, Known* known, std::string* platform);
  // Before a reply entry at a helpdesk (the note on the ticket about the acknowledgement): the
  // thread's ticket and the note, or false when there is nothing to note (no ticket, nothing
  // sent), it waits for the acknowledgement, or the dispatcher stopped.
  asio::awaitable<bool> PrepareReplyNote(const storage::Lease& lease, Known* known);
  // Settles a lease without sending: recorded (until storage takes it) as delivered with
  // `note`, or as a dead letter.
  asio::awaitable<void> Settle(const storage::Lease& lease, bool dead, const std::string& note, const char* what);
  void CountReply(const std::string& platform, absl::string_view outcome);
  // Runs the storage call `op` on the pool until it succeeds or the dispatcher stops, once per
  // second; returns its last outcome.
  template <typename Op>
  asio::awaitable<std::invoke_result_t<Op&>> UntilStored(Op op, const char* what);
  void Ended(std::exception_ptr e);
  void WakeAll();  // on the strand: every worker looks again (a gate changed)
  void WakeIdle(size_t workers);  // on the strand
  void PublishBreaker();
  void PublishPause(absl::Time now);

  storage::Store& store_;
  BlockingPool& pool_;
  const storage::Clock& clock_;
  const config::DestinationOptions options_;
  std::unique_ptr<Sender> sender_;
  Metrics& metrics_;
  Acknowledger* const acknowledger_;
  const prometheus::Labels labels_;
  prometheus::Gauge& paused_gauge_;
  prometheus::Gauge& in_flight_gauge_;
  prometheus::Gauge& breaker_gauge_;
  prometheus::Counter& rate_limit_waits_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
  std::atomic<int> running_{0};
  std::atomic<bool> removed_{false};
  // Strand-only state.
  bool stopping_ = false;
  uint64_t wake_generation_ = 0;
  std::vector<int> idle_;  // workers waiting with nothing to send, the latest last
  FailureStreak streak_;
  bool probing_ = false;  // a failing destination's one attempt is out
  absl::Time paused_until_ = absl::InfinitePast();
  TokenBucket bucket_;
  CircuitBreaker breaker_;
  // The workers' leases and plain acks, grouped: one lock and one write batch per group.
  Grouped<absl::Time, std::optional<storage::Lease>> leases_;
  Grouped<const storage::Lease*, absl::Status> acks_;
  absl::BitGen random_;
  bool manual_pause_ = false;
  uint64_t manual_pause_changes_ = 0;  // operator's changes, so a slow first read loses none
  // Published from the strand for status().
  std::atomic<bool> manual_pause_seen_{false};
  std::atomic<int64_t> paused_until_ms_{0};
  std::atomic<int> breaker_seen_{0};
  mutable absl::Mutex counts_mu_;
  std::map<std::string, OpenCount> counts_ ABSL_GUARDED_BY(counts_mu_);  // by team
};

// The running dispatchers by destination name. A reload adds, replaces and removes them
// while the store's ready callback, the admin API and the shutdown read them from other
// threads.
class Dispatchers {
 public:
  std::shared_ptr<Dispatcher> Find(absl::string_view name) const;
  std::vector<std::shared_ptr<Dispatcher>> All() const;  // by name
  // Registers `dispatcher` under its name; returns the one it replaces, if any.
  std::shared_ptr<Dispatcher> Put(std::shared_ptr<Dispatcher> dispatcher);
  std::shared_ptr<Dispatcher> Remove(absl::string_view name);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Dispatcher>, std::less<>> by_name_ ABSL_GUARDED_BY(mu_);
};

}  // namespace triage::daemon
