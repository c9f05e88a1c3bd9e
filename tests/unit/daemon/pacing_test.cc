#include "daemon/pacing.h"

#include <gtest/gtest.h>

namespace triage::daemon {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(TokenBucketTest, SpendsTheBurstThenPacesAtTheRate) {
  TokenBucket bucket(10, 3, kT0);  // 10/s, burst 3
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(bucket.Available(kT0), kT0) << i;
    bucket.Take(kT0);
  }
  EXPECT_EQ(bucket.Available(kT0), kT0 + absl::Milliseconds(100));
  bucket.Take(kT0 + absl::Milliseconds(100));
  EXPECT_EQ(bucket.Available(kT0 + absl::Milliseconds(150)), kT0 + absl::Milliseconds(200));
  // Idle time saves up no more than the burst.
  const absl::Time later = kT0 + absl::Hours(1);
  int taken = 0;
  while (bucket.Available(later) == later) {
    bucket.Take(later);
    ++taken;
  }
  EXPECT_EQ(taken, 3);
}

TEST(TokenBucketTest, ExtraRequestsOfACallAreChargedAndPaidBackBeforeTheNext) {
  TokenBucket bucket(10, 1, kT0);  // 10/s, burst 1
  ASSERT_EQ(bucket.Available(kT0), kT0);
  bucket.Take(kT0);
  bucket.Charge(2, kT0);  // the call also made a lookup and a requester request
  EXPECT_EQ(bucket.Available(kT0), kT0 + absl::Milliseconds(300)) << "three requests at 10/s";
  EXPECT_EQ(bucket.Available(kT0 + absl::Milliseconds(300)), kT0 + absl::Milliseconds(300));
}

TEST(TokenBucketTest, RateZeroIsUnlimited) {
  TokenBucket bucket(0, 1, kT0);
  for (int i = 0; i < 1000; ++i) bucket.Take(kT0);
  EXPECT_EQ(bucket.Available(kT0), kT0);
}

config::BreakerOptions Options() {
  config::BreakerOptions o;
  o.failure_ratio = 0.5;
  o.window = 4;
  o.min_calls = 4;
  o.open_for = absl::Seconds(10);
  o.open_max = absl::Seconds(25);
  return o;
}

// Runs one call that started and ended at `at`.
bool Call(CircuitBreaker& breaker, bool failure, absl::Time at) {
  EXPECT_LE(breaker.Admits(at), at);
  return breaker.Record(breaker.Start(), failure, at);
}

TEST(CircuitBreakerTest, OpensAtTheFailureRatioOnceTheWindowHasEnoughCalls) {
  CircuitBreaker breaker(Options());
  EXPECT_FALSE(Call(breaker, true, kT0));
  EXPECT_FALSE(Call(breaker, true, kT0));
  EXPECT_FALSE(Call(breaker, false, kT0));
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed) << "3 calls: below min_calls";
  EXPECT_TRUE(Call(breaker, true, kT0));  // 3 of 4 failed
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.Admits(kT0 + absl::Seconds(1)), kT0 + absl::Seconds(10));
}

TEST(CircuitBreakerTest, OldFailuresSlideOutOfTheWindow) {
  CircuitBreaker breaker(Options());
  Call(breaker, true, kT0);
  for (int i = 0; i < 10; ++i) Call(breaker, false, kT0);
  Call(breaker, true, kT0);  // 1 failure in the last 4
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  Call(breaker, true, kT0);  // 2 of 4: the ratio is reached
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
}

TEST(CircuitBreakerTest, HalfOpenSendsOneProbeAndItsOutcomeDecides) {
  CircuitBreaker breaker(Options());
  for (int i = 0; i < 4; ++i) Call(breaker, true, kT0);
  ASSERT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  const uint64_t late = 0;  // a call started before the breaker opened

  absl::Time t = kT0 + absl::Seconds(10);
  ASSERT_EQ(breaker.Admits(t), t);
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kHalfOpen);
  uint64_t probe = breaker.Start();
  EXPECT_EQ(breaker.Admits(t), absl::InfiniteFuture()) << "one probe at a time";
  EXPECT_FALSE(breaker.Record(late, false, t)) << "a stale success does not close it";
  EXPECT_TRUE(breaker.Record(probe, true, t));
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(breaker.Admits(t), t + absl::Seconds(20)) << "reopened for twice as long";

  t += absl::Seconds(20);
  ASSERT_EQ(breaker.Admits(t), t);
  probe = breaker.Start();
  EXPECT_TRUE(breaker.Record(probe, true, t));
  EXPECT_EQ(breaker.Admits(t), t + absl::Seconds(25)) << "capped at open_max";

  t += absl::Seconds(25);
  ASSERT_EQ(breaker.Admits(t), t);
  probe = breaker.Start();
  EXPECT_TRUE(breaker.Record(probe, false, t));
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  // Closed with a fresh window: three failures are not enough to reopen.
  for (int i = 0; i < 3; ++i) Call(breaker, true, t);
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  // After a success the next opening starts from open_for again.
  Call(breaker, true, t);
  EXPECT_EQ(breaker.Admits(t), t + absl::Seconds(10));
}

TEST(CircuitBreakerTest, ACancelledProbeLetsTheNextOneGo) {
  CircuitBreaker breaker(Options());
  for (int i = 0; i < 4; ++i) Call(breaker, true, kT0);
  const absl::Time t = kT0 + absl::Seconds(10);
  ASSERT_EQ(breaker.Admits(t), t);
  const uint64_t probe = breaker.Start();
  ASSERT_EQ(breaker.Admits(t), absl::InfiniteFuture());
  breaker.Cancel(probe);  // nothing was due after all
  EXPECT_EQ(breaker.Admits(t), t);
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kHalfOpen);
}

TEST(TokenBucketTest, AReturnedTokenCanBeTakenAgainButNotBeyondTheBurst) {
  TokenBucket bucket(/*rate=*/1, /*burst=*/1, kT0);
  bucket.Take(kT0);
  EXPECT_EQ(bucket.Available(kT0), kT0 + absl::Seconds(1));
  bucket.Return();
  EXPECT_EQ(bucket.Available(kT0), kT0);
  bucket.Return();  // already full
  bucket.Take(kT0);
  EXPECT_GT(bucket.Available(kT0), kT0);
}

TEST(LogLimiterTest, OneLinePerKeyAndPeriodWithTheCountKeptQuiet) {
  LogLimiter limiter(absl::Seconds(1));
  EXPECT_EQ(limiter.Admit("generic 401", kT0), 0);
  EXPECT_EQ(limiter.Admit("generic 401", kT0 + absl::Milliseconds(10)), std::nullopt);
  EXPECT_EQ(limiter.Admit("generic 401", kT0 + absl::Milliseconds(20)), std::nullopt);
  EXPECT_EQ(limiter.Admit("generic 400", kT0 + absl::Milliseconds(20)), 0) << "keys are apart";
  EXPECT_EQ(limiter.Admit("generic 401", kT0 + absl::Seconds(1)), 2);
  EXPECT_EQ(limiter.Admit("generic 401", kT0 + absl::Seconds(3)), 0);
}

// Full jitter draws the whole ceiling when the generator returns its largest value.
class Highest {
 public:
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~uint64_t{0}; }
  result_type operator()() { return max(); }
};

TEST(FailureStreakTest, ConcurrentFailuresCountOnceAndThePauseIsCappedAtProbeMax) {
  FailureStreak streak(absl::Seconds(1), absl::Seconds(30), absl::Hours(1));
  Highest highest;
  // Two workers start in the same round and both fail: one step, not two.
  const uint64_t a = streak.Start();
  const uint64_t b = streak.Start();
  const absl::Duration first = streak.Failed(a, std::nullopt, highest);
  streak.Failed(b, std::nullopt, highest);
  EXPECT_EQ(streak.streak(), 1);
  EXPECT_LE(first, absl::Seconds(1));
  // A long outage: one failure per round, the pause stops growing at probe_max.
  absl::Duration pause;
  for (int round = 0; round < 40; ++round) pause = streak.Failed(streak.Start(), std::nullopt, highest);
  EXPECT_EQ(streak.streak(), 41);
  EXPECT_LE(pause, absl::Seconds(30));
  EXPECT_GE(pause, absl::Seconds(29));
  // A Retry-After beyond the cap is honoured (up to retry_after_max).
  EXPECT_EQ(streak.Failed(streak.Start(), absl::Minutes(5), highest), absl::Minutes(5));
  EXPECT_EQ(streak.Failed(streak.Start(), absl::Hours(3), highest), absl::Hours(1));
  // A success ends the streak; a failure of an attempt started before it counts for the new
  // round only if nothing moved since.
  const uint64_t stale = streak.Start();
  streak.Succeeded();
  EXPECT_EQ(streak.streak(), 0);
  streak.Failed(stale, std::nullopt, highest);
  EXPECT_EQ(streak.streak(), 0) << "a failure from before the success does not start a streak";
  EXPECT_LE(streak.Failed(streak.Start(), std::nullopt, highest), absl::Seconds(1));
}

}  // namespace
}  // namespace triage::daemon
