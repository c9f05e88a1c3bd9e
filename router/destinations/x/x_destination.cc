// x: acknowledgements on X (API v2) as the brand account (OAuth 2.0 user token or OAuth 1.0a
// keys). A direct
// message is answered by a DM (POST /2/dm_conversations/with/{author}/messages); a post that
// mentioned, replied to or quoted the brand by a reply (POST /2/tweets with
// reply.in_reply_to_tweet_id). Since 2026-02-23 X refuses self-serve apps' replies to posts
// that did not engage the brand, and its rules allow one automated reply per interaction, so a
// post matched by keyword alone gets none. Facts: ../shared/reference/outbound-replies.md §1.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/reply_parts.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"
#include "router/text.h"

namespace triage::router {
namespace {

constexpr int64_t kPostLimit = 280;   // weighted characters
constexpr int64_t kDmLimit = 10'000;  // characters [secondary]

// The latest reset (epoch seconds) among the exhausted rate windows of an answer: the 15-minute
// one and the 24-hour app and user ones; the 15-minute one when none says it is exhausted.
std::optional<absl::Duration> RateReset(const HeaderReader& header, absl::Time now, bool any) {
  std::optional<absl::Time> latest;
  for (const char* prefix : {"x-rate-limit", "x-app-limit-24hour", "x-user-limit-24hour"}) {
    const std::optional<std::string> remaining = header(absl::StrCat(prefix, "-remaining"));
    const std::optional<std::string> reset = header(absl::StrCat(prefix, "-reset"));
    int64_t at = 0;
    if (!reset || !absl::SimpleAtoi(*reset, &at)) continue;
    if (remaining != "0" && !(any && absl::string_view(prefix) == "x-rate-limit")) continue;
    latest = std::max(latest.value_or(absl::InfinitePast()), absl::FromUnixSeconds(at));
  }
  if (!latest) return std::nullopt;
  return std::max(absl::ZeroDuration(), *latest - now);
}

class XDestination : public DestinationType {
 public:
  std::string_view name() const override { return "x"; }
  // Either OAuth 2.0 (access_token: a user token, which X lets live 2 hours: keep it fresh
  // with a {file:} and reloads), or OAuth 1.0a (the brand account's consumer key and secret
  // and access token and secret, from the developer portal, which do not expire).
  std::vector<Setting> settings() const override {
    return {{.key = "access_token", .kind = Setting::Kind::kSecret},
            {.key = "consumer_key", .kind = Setting::Kind::kSecret},
            {.key = "consumer_secret", .kind = Setting::Kind::kSecret},
            {.key = "token", .kind = Setting::Kind::kSecret},
            {.key = "token_secret", .kind = Setting::Kind::kSecret}};
  }
  std::vector<std::pair<std::string, std::string>> Validate(const Settings& s) const override {
    const bool oauth1 = s.Has("consumer_key") && s.Has("consumer_secret") && s.Has("token") && s.Has("token_secret");
    const bool any_oauth1 = s.Has("consumer_key") || s.Has("consumer_secret") || s.Has("token") || s.Has("token_secret");
    if (s.Has("access_token") == any_oauth1 || (any_oauth1 && !oauth1)) {
      return {{"", "give either access_token (OAuth 2.0), or consumer_key, consumer_secret, token and token_secret "
                   "(OAuth 1.0a)"}};
    }
    return {};
  }
  RequestSigning Signing(const Settings& s) const override {
    if (s.Has("access_token")) return {};
    return {.kind = RequestSigning::Kind::kOAuth1,
            .parts = {s.Get("consumer_key"), s.Get("consumer_secret"), s.Get("token"), s.Get("token_secret")}};
  }
  // One at a time; X allows 100 posts and 15 DMs per 15 minutes per user, and its rate headers
  // say when a window is spent.
  DestinationDefaults defaults() const override { return {.concurrency = 1, .rate = 0.1, .burst = 5}; }
  std::string Authorization(const Settings& settings) const override {
    if (!settings.Has("access_token")) return "";  // OAuth 1.0a: signed per request
    return absl::StrCat("Bearer ", settings.Get("access_token"));
  }

  bool replies_only() const override { return true; }
  std::string ReplyProblem(const ReplyTarget& target) const override {
    if (target.platform != "x") return absl::StrCat("x answers X messages, not ", target.platform);
    if (target.kind == "direct_message" || target.kind == "mention" || target.kind == "reply" ||
        target.kind == "quote") {
      return "";
    }
    return "X allows a reply only to a DM or a post that mentioned, answered or quoted the brand";
  }

  absl::StatusOr<OutboundRequest> Render(const DestinationView&, const TicketView* ticket,
                                         const DeliveryContext& context) const override {
    if (!context.reply_text) return absl::InvalidArgumentError("x sends acknowledgements only");
    const std::string problem = ReplyProblem({ticket->platform, ticket->kind, ticket->channel});
    if (!problem.empty()) return absl::InvalidArgumentError(problem);
    OutboundRequest request;
    JsonWriter w;
    w.BeginObject();
    if (ticket->kind == "direct_message") {
      if (ticket->author_id.empty()) return absl::InvalidArgumentError("the DM names no author to answer");
      request.target = absl::StrCat("/2/dm_conversations/with/", PercentEncode(ticket->author_id), "/messages");
      w.Key("text").String(FitText(*context.reply_text, kDmLimit, TextMeasure::kCodePoints));
    } else {
      request.target = "/2/tweets";
      w.Key("text").String(FitText(*context.reply_text, kPostLimit, TextMeasure::kXWeighted));
      w.Key("reply").BeginObject().Key("in_reply_to_tweet_id").String(ticket->id).EndObject();
    }
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  absl::StatusOr<std::string> ReplyId(absl::string_view answer) const override {
    absl::StatusOr<std::string> id = AnswerId(answer, "data", "id");
    if (id.ok()) return id;
    return AnswerId(answer, "data", "dm_event_id");
  }

  std::optional<AnswerClass> ClassifyAnswer(int status, absl::string_view body, const HeaderReader& header,
                                            absl::Time now) const override {
    AnswerClass out;
    out.detail = absl::StrCat("HTTP ", status, ": ", body.substr(0, 200));
    if (status >= 200 && status < 300) {
      // A write that spent a window: the destination waits for its reset.
      const std::optional<absl::Duration> reset = RateReset(header, now, false);
      if (!reset) return std::nullopt;
      out.kind = AnswerClass::Kind::kDelivered;
      out.retry_after = reset;
      return out;
    }
    if (status == 429 || absl::StrContains(body, "usage-capped")) {
      out.kind = AnswerClass::Kind::kRetry;
      out.throttled = true;
      out.retry_after = RateReset(header, now, true);
      out.reason = "rate_limited";
      return out;
    }
    if (status == 401) {
      out.reason = "credentials";
      return out;
    }
    if (status == 403) {
      if (absl::StrContains(absl::AsciiStrToLower(body), "duplicate content")) {
        // The same text twice: most likely an earlier attempt was sent.
        out.reason = "duplicate";
        out.detail = absl::StrCat(out.detail, " (an earlier attempt was most likely sent)");
      } else {
        out.reason = "not_allowed";
      }
      return out;
    }
    return std::nullopt;
  }
};

}  // namespace

const DestinationType& XDestinationType() {
  static const XDestination type;
  return type;
}

}  // namespace triage::router
