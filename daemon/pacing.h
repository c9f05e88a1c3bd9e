#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"
#include "config/config.h"

namespace triage::daemon {

// A token bucket: `rate` tokens a second, at most `burst` saved up. Rate 0 means unlimited.
// Not thread-safe: a destination's dispatcher uses it from its strand.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, absl::Time now);

  // When the next token is there: `now` if one is, later otherwise.
  absl::Time Available(absl::Time now);
  // Takes one token; call only once Available(now) <= now.
  void Take(absl::Time now);
  // Gives back a token taken for a call that did not happen (up to the burst).
  void Return();
  // Takes `tokens` more for the extra requests one call made (a lookup, the requester): the
  // balance may go below zero, and Available waits until it is paid back.
  void Charge(double tokens, absl::Time now);

 private:
  void Refill(absl::Time now);

  const double rate_;
  const double burst_;
  double tokens_;
  absl::Time updated_;
};

// A circuit breaker over the outcomes of one destination's calls.
//   closed: calls flow; each outcome enters a sliding window of the last `window` calls.
//   open: no calls until the pause ends, then half-open.
//   half-open: one probe call; its success closes the breaker, its failure opens it again for
//   twice as long (up to open_max).
// Outcomes of calls started under an earlier state are ignored, so a slow answer from before
// the breaker opened cannot close it. Not thread-safe (strand).
class CircuitBreaker {
 public:
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  explicit CircuitBreaker(config::BreakerOptions options) : options_(options) {}

  // When a call may start: now while closed, or half-open with no probe out; the end of the
  // pause while open; InfiniteFuture while the probe is out.
  absl::Time Admits(absl::Time now);
  // A call starts (after Admits(now) <= now); the ticket goes back to Record, or to Cancel.
  uint64_t Start();
  // The call of `ticket` did not happen after all (nothing was due): a half-open breaker may
  // send its probe again.
  void Cancel(uint64_t ticket);
  // The call of `ticket` ended; `failure` for transport errors and 5xx, not for answers that
  // show the helpdesk is up (2xx, 4xx, 429). Returns true when the state changed.
  bool Record(uint64_t ticket, bool failure, absl::Time now);

  State state() const { return state_; }
  absl::Time open_until() const { return open_until_; }

 private:
  void Open(absl::Time now);
  void Close();

  const config::BreakerOptions options_;
  State state_ = State::kClosed;
  uint64_t generation_ = 0;  // bumped on every state change
  bool probe_out_ = false;
  int reopenings_ = 0;
  absl::Time open_until_ = absl::InfinitePast();
  std::vector<bool> window_;  // ring of outcomes, true = failure
  size_t next_ = 0;
  int failures_ = 0;
};

// At most one log line per key and `period`: Admit says whether this event's line is written,
// and how many events of the key were kept quiet since the last one. Keys must come from a
// bounded set (source and status). Not thread-safe: the caller locks.
class LogLimiter {
 public:
  explicit LogLimiter(absl::Duration period) : period_(period) {}
  // nullopt: stay quiet; otherwise the line is written, with the count suppressed before it.
  std::optional<int64_t> Admit(const std::string& key, absl::Time now);

 private:
  struct Seen {
    absl::Time last = absl::InfinitePast();
    int64_t suppressed = 0;
  };
  const absl::Duration period_;
  std::map<std::string, Seen> seen_;
};

// The failure streak of one destination and the pause it imposes after a retryable failure.
// Attempts started in the same round (before an outcome moved the streak) that fail count
// once, so workers failing together raise the streak by one, not one each. The pause is a
// full jitter over an exponential ceiling, initial * 2^(streak-1), capped at `probe_max`: a
// destination that recovers is tried again within probe_max however long it was down. A
// Retry-After the destination sent is honoured beyond that cap, up to `retry_after_max`.
// Not thread-safe (strand).
class FailureStreak {
 public:
  FailureStreak(absl::Duration initial, absl::Duration probe_max, absl::Duration retry_after_max)
      : initial_(initial), probe_max_(probe_max), retry_after_max_(retry_after_max) {}

  // An attempt starts; the ticket goes back to Failed.
  uint64_t Start() const { return round_; }
  // The attempt of `ticket` failed and may be retried: the pause from now.
  absl::Duration Failed(uint64_t ticket, std::optional<absl::Duration> retry_after,
                        absl::BitGenRef random);
  // An attempt succeeded: the streak ends.
  void Succeeded();

  int streak() const { return streak_; }

 private:
  const absl::Duration initial_;
  const absl::Duration probe_max_;
  const absl::Duration retry_after_max_;
  int streak_ = 0;
  uint64_t round_ = 0;  // bumped whenever the streak moves
};

}  // namespace triage::daemon
