#include "daemon/delivery.h"

#include <gtest/gtest.h>

#include "daemon/ingest.h"

namespace triage::daemon {
namespace {

Response WithStatus(int status, std::string retry_after = "") {
  Response r{static_cast<http::status>(status), 11};
  r.body() = std::string(1000, 'x');
  if (!retry_after.empty()) r.set(http::field::retry_after, retry_after);
  return r;
}

TEST(ClassifyTest, EachStatusHasOneOutcome) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  struct Case {
    int status;
    Attempt::Kind kind;
  };
  for (const Case& c : std::vector<Case>{{200, Attempt::Kind::kDelivered},
                                         {201, Attempt::Kind::kDelivered},
                                         {204, Attempt::Kind::kDelivered},
                                         {301, Attempt::Kind::kPermanent},
                                         {400, Attempt::Kind::kPermanent},
                                         {401, Attempt::Kind::kPermanent},
                                         {404, Attempt::Kind::kPermanent},
                                         {408, Attempt::Kind::kRetry},
                                         {410, Attempt::Kind::kPermanent},
                                         {422, Attempt::Kind::kPermanent},
                                         {425, Attempt::Kind::kRetry},
                                         {429, Attempt::Kind::kRetry},
                                         {500, Attempt::Kind::kRetry},
                                         {503, Attempt::Kind::kRetry},
                                         {504, Attempt::Kind::kRetry}}) {
    const Attempt a = ClassifyResponse(WithStatus(c.status), now);
    EXPECT_EQ(a.kind, c.kind) << c.status;
    EXPECT_LE(a.detail.size(), 300u) << "the error snippet is bounded";
  }
  EXPECT_EQ(ClassifyResponse(WithStatus(429, "7"), now).retry_after, absl::Seconds(7));
  EXPECT_EQ(ClassifyTransportError(asio::error::connection_refused, "connect").kind,
            Attempt::Kind::kRetry);
}

TEST(ClassifyTest, ThrottlingAndSpentQuotasAreToldApart) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  EXPECT_TRUE(ClassifyResponse(WithStatus(429), now).throttled);
  EXPECT_FALSE(ClassifyResponse(WithStatus(503, "5"), now).throttled) << "a 503 counts against the breaker";
  // Zendesk: nothing left in this window, which resets in 12 s.
  Response spent = WithStatus(201);
  spent.set("X-Rate-Limit-Remaining", "0");
  spent.set("ratelimit-reset", "12");
  const Attempt a = ClassifyResponse(spent, now);
  EXPECT_EQ(a.kind, Attempt::Kind::kDelivered);
  EXPECT_EQ(a.quota_reset, absl::Seconds(12));
  // Requests left, or no reset given: no pause.
  Response left = WithStatus(201);
  left.set("ratelimit-remaining", "3");
  left.set("ratelimit-reset", "12");
  EXPECT_FALSE(ClassifyResponse(left, now).quota_reset.has_value());
  Response unknown_reset = WithStatus(200);
  unknown_reset.set("X-RateLimit-Remaining", "0");
  EXPECT_FALSE(ClassifyResponse(unknown_reset, now).quota_reset.has_value());
}

TEST(RetryAfterTest, SecondsAndHttpDates) {
  const absl::Time now = absl::FromUnixSeconds(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:29:30 GMT", now), absl::Seconds(90));
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", now).has_value());
}

TEST(RetryDelayTest, FullJitterUnderAnExponentialCeilingAndRetryAfterFloor) {
  config::DestinationOptions options;
  options.backoff_initial = absl::Seconds(1);
  options.backoff_max = absl::Seconds(60);
  options.retry_after_max = absl::Seconds(300);
  absl::BitGen random;
  for (uint32_t attempts = 1; attempts <= 20; ++attempts) {
    const absl::Duration ceiling =
        std::min(absl::Seconds(60), absl::Seconds(1) * (int64_t{1} << std::min(attempts - 1, 30u)));
    absl::Duration longest;
    for (int i = 0; i < 200; ++i) {
      const absl::Duration d = RetryDelay(options, attempts, std::nullopt, random);
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, ceiling) << attempts;
      longest = std::max(longest, d);
    }
    EXPECT_GT(longest, ceiling / 2) << "jitter spreads over the whole range";
  }
  EXPECT_GE(RetryDelay(options, 1, absl::Seconds(30), random), absl::Seconds(30));
  EXPECT_EQ(RetryDelay(options, 1, absl::Hours(10), random), absl::Seconds(300));
}

TEST(DeliveryIdTest, StablePerDeliveryAndDistinctOtherwise) {
  const std::string id = DeliveryId("zendesk", "generic\0m1", "support");
  EXPECT_EQ(id, DeliveryId("zendesk", "generic\0m1", "support"));
  EXPECT_NE(id, DeliveryId("zendesk", "generic\0m1", "pr"));
  EXPECT_NE(id, DeliveryId("freshdesk", "generic\0m1", "support"));
  EXPECT_EQ(id.substr(0, 4), "msg_");
  EXPECT_EQ(id.find('.'), std::string::npos) << "Standard Webhooks ids must not contain dots";
}

TEST(UrlTest, ParsesSchemesHostsPortsAndTargets) {
  auto url = ParseUrl("https://acme.zendesk.com/api/v2/tickets.json?x=1");
  ASSERT_TRUE(url.ok());
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "acme.zendesk.com");
  EXPECT_EQ(url->port, "443");
  EXPECT_EQ(url->target, "/api/v2/tickets.json?x=1");
  url = ParseUrl("http://127.0.0.1:8081");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, "8081");
  EXPECT_EQ(url->target, "/");
  url = ParseUrl("http://[::1]:9000/hook");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "9000");
  EXPECT_FALSE(ParseUrl("ftp://x").ok());
  EXPECT_FALSE(ParseUrl("http://user:pw@host/").ok());
}

TEST(IngressStatusTest, OneHttpStatusPerCode) {
  EXPECT_EQ(IngressStatus(absl::OkStatus()), http::status::ok);
  EXPECT_EQ(IngressStatus(absl::InvalidArgumentError("")), http::status::bad_request);
  EXPECT_EQ(IngressStatus(absl::UnauthenticatedError("")), http::status::unauthorized);
  EXPECT_EQ(IngressStatus(absl::NotFoundError("")), http::status::not_found);
  EXPECT_EQ(IngressStatus(absl::UnavailableError("")), http::status::service_unavailable);
  EXPECT_EQ(IngressStatus(absl::ResourceExhaustedError("")), http::status::service_unavailable);
  EXPECT_EQ(IngressStatus(absl::InternalError("")), http::status::internal_server_error);
}

}  // namespace
}  // namespace triage::daemon
