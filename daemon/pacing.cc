#include "daemon/pacing.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"

namespace triage::daemon {

TokenBucket::TokenBucket(double rate, double burst, absl::Time now)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)), updated_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now <= updated_) return;
  tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - updated_) * rate_);
  updated_ = now;
}

absl::Time TokenBucket::Available(absl::Time now) {
  if (rate_ <= 0) return now;
  Refill(now);
  if (tokens_ >= 1.0) return now;
  return now + absl::Seconds((1.0 - tokens_) / rate_);
}

void TokenBucket::Take(absl::Time now) {
  if (rate_ <= 0) return;
  Refill(now);
  tokens_ -= 1.0;
}

void TokenBucket::Charge(double tokens, absl::Time now) {
  if (rate_ <= 0) return;
  Refill(now);
  tokens_ -= tokens;
}

void TokenBucket::Return() {
  if (rate_ <= 0) return;
  tokens_ = std::min(burst_, tokens_ + 1.0);
}

absl::Time CircuitBreaker::Admits(absl::Time now) {
  if (state_ == State::kOpen) {
    if (now < open_until_) return open_until_;
    state_ = State::kHalfOpen;
    ++generation_;
    probe_out_ = false;
  }
  if (state_ == State::kHalfOpen && probe_out_) return absl::InfiniteFuture();
  return now;
}

uint64_t CircuitBreaker::Start() {
  if (state_ == State::kHalfOpen) probe_out_ = true;
  return generation_;
}

void CircuitBreaker::Cancel(uint64_t ticket) {
  if (ticket == generation_ && state_ == State::kHalfOpen) probe_out_ = false;
}

bool CircuitBreaker::Record(uint64_t ticket, bool failure, absl::Time now) {
  if (ticket != generation_) return false;
  switch (state_) {
    case State::kOpen:
      return false;
    case State::kHalfOpen:
      if (failure) {
        Open(now);
      } else {
        reopenings_ = 0;
        Close();
      }
      return true;
    case State::kClosed:
      break;
  }
  const size_t size = static_cast<size_t>(std::max(1, options_.window));
  if (window_.size() < size) {
    window_.push_back(failure);
  } else {
    failures_ -= window_[next_] ? 1 : 0;
    window_[next_] = failure;
    next_ = (next_ + 1) % size;
  }
  failures_ += failure ? 1 : 0;
  const int calls = static_cast<int>(window_.size());
  if (failure && calls >= options_.min_calls &&
      failures_ >= options_.failure_ratio * calls) {
    Open(now);
    return true;
  }
  return false;
}

void CircuitBreaker::Open(absl::Time now) {
  absl::Duration pause = options_.open_for;
  for (int i = 0; i < reopenings_ && pause < options_.open_max; ++i) pause *= 2;
  pause = std::min(pause, options_.open_max);
  ++reopenings_;
  state_ = State::kOpen;
  open_until_ = now + pause;
  ++generation_;
  probe_out_ = false;
}

void CircuitBreaker::Close() {
  state_ = State::kClosed;
  ++generation_;
  probe_out_ = false;
  window_.clear();
  next_ = 0;
  failures_ = 0;
}

std::optional<int64_t> LogLimiter::Admit(const std::string& key, absl::Time now) {
  Seen& seen = seen_[key];
  if (now - seen.last < period_) {
    ++seen.suppressed;
    return std::nullopt;
  }
  seen.last = now;
  const int64_t suppressed = seen.suppressed;
  seen.suppressed = 0;
  return suppressed;
}

absl::Duration FailureStreak::Failed(uint64_t ticket, std::optional<absl::Duration> retry_after,
                                     absl::BitGenRef random) {
  if (ticket == round_) {
    ++streak_;
    ++round_;
  }
  absl::Duration ceiling = initial_;
  for (int i = 1; i < streak_ && ceiling < probe_max_; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, probe_max_);
  absl::Duration pause = ceiling * absl::Uniform(random, 0.0, 1.0);
  if (retry_after) pause = std::max(pause, std::min(*retry_after, retry_after_max_));
  return pause;
}

void FailureStreak::Succeeded() {
  if (streak_ == 0) return;
  streak_ = 0;
  ++round_;
}

}  // namespace triage::daemon
