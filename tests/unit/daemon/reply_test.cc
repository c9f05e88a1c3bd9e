// Acknowledgements: the reply destination types (router/destinations/{x,meta,whatsapp}/)
// against the platforms' documented request, answer and error shapes (tests/fixtures/replies/,
// from ../shared/reference/fixtures/replies/), the acknowledge block of the config, and the
// daemon's choice of a reply destination, its rounding of waits and its opening hours.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/config.h"
#include "daemon/acknowledge.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/reply_parts.h"
#include "router/ticket_json.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

using testing::Field;
using testing::ReadFixture;

struct Message {
  std::string platform, kind, channel, id = "1790000000000000001", author = "2244994945";
};

TicketView View(const Message& m) {
  RoutedMessage r;
  r.message.source = m.platform;
  r.message.id = m.id;
  r.message.platform = m.platform;
  r.message.kind = m.kind;
  r.message.channel = m.channel;
  r.message.author.id = m.author;
  r.message.text = "my order never arrived";
  r.received_at = absl::FromUnixSeconds(1795000002);
  r.triage.team = "support";
  absl::StatusOr<TicketView> view = ParseTicketView(TicketJson(r));
  EXPECT_TRUE(view.ok()) << view.status();
  return *view;
}

absl::StatusOr<OutboundRequest> RenderReply(const DestinationType& type, const Settings& settings, const Message& m,
                                            std::string text = "Thanks, 3 requests are ahead of yours. Ref 0A1B2C") {
  const TicketTemplates templates;
  const std::map<std::string, int64_t> groups;
  const TicketView view = View(m);
  DeliveryContext context{.destination = "replies", .team = "support", .delivery_id = "msg_0123"};
  context.reply_text = std::move(text);
  return type.Render(DestinationView{settings, templates, groups}, &view, context);
}

// The keys of a JSON object, and of its objects, as "a", "a.b": the shape of a body.
void Shape(simdjson::dom::element e, const std::string& prefix, std::set<std::string>* out) {
  if (!e.is_object()) return;
  for (auto [key, value] : e.get_object()) {
    const std::string path = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
    out->insert(path);
    Shape(value, path, out);
  }
}
std::set<std::string> Shape(const std::string& json) {
  simdjson::dom::parser parser;
  std::set<std::string> out;
  Shape(parser.parse(json), "", &out);
  return out;
}
const HeaderReader kNoHeaders = [](absl::string_view) -> std::optional<std::string> { return std::nullopt; };

Settings XSettings() { return Settings{.values = {{"access_token", "user-token"}}}; }
Settings MetaSettings() { return Settings{.values = {{"page_token", "page token&1"}}}; }
Settings WhatsAppSettings() {
  return Settings{.values = {{"access_token", "wa-token"}, {"phone_number_id", "106540352242922"}}};
}

TEST(ReplyTest, XAnswersAMentionWithAReplyAndADmWithADm) {
  const DestinationType& x = *FindDestinationType("x");
  EXPECT_EQ(x.Authorization(XSettings()), "Bearer user-token");
  absl::StatusOr<OutboundRequest> post = RenderReply(x, XSettings(), {"x", "mention", "public"});
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_EQ(post->target, "/2/tweets");
  EXPECT_EQ(Shape(post->body), Shape(ReadFixture("replies/x_post_reply_request.json")));
  EXPECT_EQ(Field(post->body, {"reply", "in_reply_to_tweet_id"}), "1790000000000000001");

  absl::StatusOr<OutboundRequest> dm = RenderReply(x, XSettings(), {"x", "direct_message", "private"});
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_EQ(dm->target, "/2/dm_conversations/with/2244994945/messages");
  EXPECT_EQ(Shape(dm->body), Shape(ReadFixture("replies/x_dm_request.json")));

  // A post that matched a keyword without engaging the brand gets no reply (X's rules and its
  // 403 for self-serve apps), and other platforms are not X's.
  EXPECT_FALSE(x.ReplyProblem({"x", "post", "public"}).empty());
  EXPECT_FALSE(x.ReplyProblem({"whatsapp", "direct_message", "private"}).empty());
  EXPECT_FALSE(RenderReply(x, XSettings(), {"x", "post", "public"}).ok());

  EXPECT_EQ(*x.ReplyId(ReadFixture("replies/x_post_create_response_201.json")), "1445880548472328192");
  EXPECT_EQ(*x.ReplyId(ReadFixture("replies/x_dm_response_201.json")), "1122334455667788990");
}

TEST(ReplyTest, XTakesEitherAnOAuth2TokenOrOAuth1aKeys) {
  const DestinationType& x = *FindDestinationType("x");
  EXPECT_TRUE(x.Validate(XSettings()).empty());
  const Settings oauth1{.values = {{"consumer_key", "ck"}, {"consumer_secret", "cs"}, {"token", "t"}, {"token_secret", "ts"}}};
  EXPECT_TRUE(x.Validate(oauth1).empty());
  EXPECT_EQ(x.Signing(oauth1).kind, RequestSigning::Kind::kOAuth1);
  EXPECT_EQ(x.Signing(oauth1).parts, (std::vector<std::string>{"ck", "cs", "t", "ts"}));
  EXPECT_EQ(x.Authorization(oauth1), "");
  EXPECT_FALSE(x.Validate(Settings{}).empty());
  Settings both = oauth1;
  both.values["access_token"] = "a";
  EXPECT_FALSE(x.Validate(both).empty());
  Settings half{.values = {{"consumer_key", "ck"}, {"token", "t"}}};
  EXPECT_FALSE(x.Validate(half).empty());
}

TEST(ReplyTest, XPostsFitTwoHundredEightyWeightedCharacters) {
  std::string long_cjk;
  for (int i = 0; i < 200; ++i) long_cjk += "待";  // weight 2 each: 400
  absl::StatusOr<OutboundRequest> post = RenderReply(*FindDestinationType("x"), XSettings(), {"x", "mention", "public"},
                                                     long_cjk);
  ASSERT_TRUE(post.ok());
  const std::string text = Field(post->body, {"text"});
  EXPECT_LE(MeasureText(text, TextMeasure::kXWeighted), 280);
  EXPECT_TRUE(absl::EndsWith(text, "…"));
  EXPECT_EQ(MeasureText("abc待", TextMeasure::kXWeighted), 5);
  EXPECT_EQ(MeasureText("abc待", TextMeasure::kBytes), 6);
  EXPECT_EQ(MeasureText("abc待", TextMeasure::kCodePoints), 4);
  EXPECT_EQ(FitText("short", 10, TextMeasure::kBytes), "short");
}

TEST(ReplyTest, XErrorsAreClassifiedFromTheAnswerAndItsRateHeaders) {
  const DestinationType& x = *FindDestinationType("x");
  const absl::Time now = absl::FromUnixSeconds(1795000000);
  std::optional<AnswerClass> duplicate =
      x.ClassifyAnswer(403, ReadFixture("replies/x_post_error_duplicate_403.json"), kNoHeaders, now);
  ASSERT_TRUE(duplicate);
  EXPECT_EQ(duplicate->kind, AnswerClass::Kind::kPermanent);
  EXPECT_EQ(duplicate->reason, "duplicate");

  const std::map<std::string, std::string> headers = {{"x-rate-limit-remaining", "0"},
                                                      {"x-rate-limit-reset", "1795000600"},
                                                      {"x-user-limit-24hour-remaining", "0"},
                                                      {"x-user-limit-24hour-reset", "1795003600"}};
  const HeaderReader read = [&](absl::string_view name) -> std::optional<std::string> {
    const auto found = headers.find(std::string(name));
    if (found == headers.end()) return std::nullopt;
    return found->second;
  };
  std::optional<AnswerClass> limited = x.ClassifyAnswer(429, ReadFixture("replies/x_error_rate_limit_429.json"), read, now);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->kind, AnswerClass::Kind::kRetry);
  EXPECT_TRUE(limited->throttled);
  EXPECT_EQ(limited->retry_after, absl::Seconds(3600));  // the latest exhausted window

  // A 201 that spent the window: delivered, and the destination waits for the reset.
  std::optional<AnswerClass> spent = x.ClassifyAnswer(201, ReadFixture("replies/x_post_create_response_201.json"), read, now);
  ASSERT_TRUE(spent);
  EXPECT_EQ(spent->kind, AnswerClass::Kind::kDelivered);
  EXPECT_EQ(spent->retry_after, absl::Seconds(3600));
  EXPECT_FALSE(x.ClassifyAnswer(201, "{}", kNoHeaders, now));
  EXPECT_EQ(x.ClassifyAnswer(401, "{}", kNoHeaders, now)->reason, "credentials");
}

TEST(ReplyTest, MetaAnswersDmsWithTheSendApiAndCommentsInPublic) {
  const DestinationType& meta = *FindDestinationType("meta");
  absl::StatusOr<OutboundRequest> dm = RenderReply(meta, MetaSettings(), {"messenger", "direct_message", "private"});
  ASSERT_TRUE(dm.ok()) << dm.status();
  EXPECT_EQ(dm->target, "/me/messages?access_token=page%20token%261");
  std::set<std::string> expected = Shape(ReadFixture("replies/messenger_send_text_request.json"));
  expected.insert("message.metadata");  // the delivery id, echoed back by the webhook
  EXPECT_EQ(Shape(dm->body), expected);
  EXPECT_EQ(Field(dm->body, {"messaging_type"}), "RESPONSE");
  EXPECT_EQ(Field(dm->body, {"message", "metadata"}), "msg_0123");

  // Instagram DMs: at most 1,000 bytes of UTF-8.
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "é";  // 800 bytes
  long_text += long_text;
  absl::StatusOr<OutboundRequest> ig =
      RenderReply(meta, MetaSettings(), {"instagram", "direct_message", "private"}, long_text);
  ASSERT_TRUE(ig.ok());
  EXPECT_LE(Field(ig->body, {"message", "text"}).size(), 1000u);

  absl::StatusOr<OutboundRequest> fb = RenderReply(meta, MetaSettings(), {"facebook", "comment", "public", "123_456"});
  ASSERT_TRUE(fb.ok());
  EXPECT_EQ(fb->target, "/123_456/comments?access_token=page%20token%261");
  EXPECT_EQ(Shape(fb->body), (std::set<std::string>{"message"}));
  absl::StatusOr<OutboundRequest> igc = RenderReply(meta, MetaSettings(), {"instagram", "comment", "public", "1789"});
  ASSERT_TRUE(igc.ok());
  EXPECT_EQ(igc->target, "/1789/replies?access_token=page%20token%261");
  EXPECT_FALSE(meta.ReplyProblem({"instagram", "reply", "public"}).empty());  // top-level comments only

  // comment_replies: private spends the comment's one private reply instead.
  Settings privately = MetaSettings();
  privately.values["comment_replies"] = "private";
  absl::StatusOr<OutboundRequest> dm_reply = RenderReply(meta, privately, {"facebook", "comment", "public", "123_456"});
  ASSERT_TRUE(dm_reply.ok());
  EXPECT_EQ(dm_reply->target, "/me/messages?access_token=page%20token%261");
  EXPECT_EQ(Field(dm_reply->body, {"recipient", "comment_id"}), "123_456");
  EXPECT_EQ(Shape(dm_reply->body), (std::set<std::string>{"recipient", "recipient.comment_id", "message", "message.text"}));
  absl::StatusOr<OutboundRequest> on_post = RenderReply(meta, privately, {"facebook", "post", "public", "99_1"});
  ASSERT_TRUE(on_post.ok());
  EXPECT_EQ(Field(on_post->body, {"recipient", "post_id"}), "99_1");

  EXPECT_EQ(*meta.ReplyId(ReadFixture("replies/messenger_send_response.json")), "AG5Hz2U...");
  EXPECT_EQ(*meta.ReplyId(ReadFixture("replies/ig_comment_reply_response.json")), "17873440459141021");
}

TEST(ReplyTest, GraphErrorsAreFinalRetriedOrAlarmsByCode) {
  const DestinationType& meta = *FindDestinationType("meta");
  const absl::Time now = absl::UnixEpoch();
  auto classify = [&](int status, const std::string& body) {
    std::optional<AnswerClass> c = meta.ClassifyAnswer(status, body, kNoHeaders, now);
    EXPECT_TRUE(c) << body;
    return c.value_or(AnswerClass());
  };
  const AnswerClass window = classify(400, ReadFixture("replies/messenger_error_10_outside_window_2017.json"));
  EXPECT_EQ(window.kind, AnswerClass::Kind::kPermanent);
  EXPECT_EQ(window.reason, "window_closed");
  EXPECT_TRUE(absl::StrContains(window.detail, "10/2018065")) << window.detail;
  EXPECT_EQ(classify(400, R"({"error":{"code":10,"error_subcode":2018278,"message":"x"}})").reason, "window_closed");
  EXPECT_EQ(classify(400, R"({"error":{"code":10,"message":"(#10) Application does not have permission"}})").reason,
            "credentials");
  EXPECT_EQ(classify(400, ReadFixture("replies/messenger_error_551_unavailable.json")).reason, "recipient");
  const AnswerClass temporary = classify(500, R"({"error":{"code":2,"message":"unexpected"}})");
  EXPECT_EQ(temporary.kind, AnswerClass::Kind::kRetry);
  const AnswerClass throttled = classify(400, R"({"error":{"code":613,"message":"Calls to this api have exceeded"}})");
  EXPECT_EQ(throttled.kind, AnswerClass::Kind::kRetry);
  EXPECT_TRUE(throttled.throttled);
  EXPECT_EQ(classify(400, R"({"error":{"code":1200,"message":"Temporary send message failure"}})").kind,
            AnswerClass::Kind::kRetry);
  EXPECT_EQ(classify(401, R"({"error":{"code":190,"message":"Invalid OAuth access token"}})").reason, "credentials");
  EXPECT_FALSE(meta.ClassifyAnswer(502, "<html>bad gateway</html>", kNoHeaders, now));  // not Graph's: generic rules
  EXPECT_FALSE(meta.ClassifyAnswer(200, R"({"message_id":"m"})", kNoHeaders, now));
}

TEST(ReplyTest, WhatsAppAnswersInContextAndReadsItsErrorCodes) {
  const DestinationType& wa = *FindDestinationType("whatsapp");
  EXPECT_EQ(wa.Authorization(WhatsAppSettings()), "Bearer wa-token");
  absl::StatusOr<OutboundRequest> text =
      RenderReply(wa, WhatsAppSettings(), {"whatsapp", "direct_message", "private", "wamid.ABC", "16505551234"});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->target, "/106540352242922/messages");
  EXPECT_EQ(Shape(text->body), Shape(ReadFixture("replies/whatsapp_text_reply_request.json")));
  EXPECT_EQ(Field(text->body, {"context", "message_id"}), "wamid.ABC");
  EXPECT_EQ(Field(text->body, {"to"}), "16505551234");
  EXPECT_EQ(Field(text->body, {"text", "preview_url"}), "false");
  EXPECT_EQ(*wa.ReplyId(ReadFixture("replies/whatsapp_send_response.json")),
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA");

  const std::string reengagement =
      absl::StrCat(R"({"error":)", ReadFixture("replies/whatsapp_error_131047_object.json"), "}");
  const std::optional<AnswerClass> window = wa.ClassifyAnswer(400, reengagement, kNoHeaders, absl::UnixEpoch());
  ASSERT_TRUE(window);
  EXPECT_EQ(window->kind, AnswerClass::Kind::kPermanent);
  EXPECT_EQ(window->reason, "window_closed");
  EXPECT_TRUE(absl::StrContains(window->detail, "more than 24 hours")) << window->detail;
  const std::optional<AnswerClass> pair = wa.ClassifyAnswer(
      400, R"({"error":{"code":131056,"message":"(Business Account, Consumer Account) pair rate limit hit"}})",
      kNoHeaders, absl::UnixEpoch());
  ASSERT_TRUE(pair);
  EXPECT_TRUE(pair->throttled);
  EXPECT_EQ(wa.ClassifyAnswer(400, R"({"error":{"code":131026,"message":"Message Undeliverable."}})", kNoHeaders,
                              absl::UnixEpoch())
                ->reason,
            "recipient");
}

TEST(ReplyTest, FilesAndWebhooksCarryTheAcknowledgementAsAnEvent) {
  for (const char* name : {"file", "webhook"}) {
    const DestinationType& type = *FindDestinationType(name);
    EXPECT_TRUE(type.sends_replies()) << name;
    EXPECT_FALSE(type.replies_only()) << name;
    DeliveryContext context{.destination = "acks", .team = "support", .delivery_id = "msg_1", .ticket_json = "{}"};
    context.reply_text = "Thanks";
    const TicketTemplates templates;
    const std::map<std::string, int64_t> groups;
    absl::StatusOr<OutboundRequest> line = type.Render(DestinationView{Settings{}, templates, groups}, nullptr, context);
    ASSERT_TRUE(line.ok());
    EXPECT_EQ(Field(line->body, {"type"}), "acknowledgement.sent");
    EXPECT_EQ(Field(line->body, {"data", "role"}), "reply");
    EXPECT_EQ(Field(line->body, {"data", "text"}), "Thanks");
  }
  EXPECT_FALSE(FindDestinationType("zendesk")->sends_replies());
}

}  // namespace
}  // namespace triage::router

namespace triage::daemon {
namespace {

TEST(AcknowledgeTest, WaitsAreRoundedForPeople) {
  EXPECT_EQ(WaitInWords(absl::Minutes(3)), "within 15 minutes");
  EXPECT_EQ(WaitInWords(absl::Minutes(31)), "in about 40 minutes");
  EXPECT_EQ(WaitInWords(absl::Minutes(75)), "in about an hour");
  EXPECT_EQ(WaitInWords(absl::Minutes(130)), "within 3 hours");
  EXPECT_EQ(WaitInWords(absl::Hours(30)), "within 2 days");
}

TEST(AcknowledgeTest, OpensAtIsTheNextOpeningInTheTeamsZone) {
  router::TimeWindow hours;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Paris", &hours.zone));
  hours.days = {absl::Weekday::monday, absl::Weekday::tuesday, absl::Weekday::wednesday, absl::Weekday::thursday,
                absl::Weekday::friday};
  hours.from_minute = 9 * 60;
  hours.to_minute = 18 * 60;
  // Tuesday 2026-12-01 06:30 UTC is 07:30 in Paris: opens the same day.
  EXPECT_EQ(OpensAt(hours, absl::FromCivil(absl::CivilMinute(2026, 12, 1, 6, 30), absl::UTCTimeZone())), "09:00 CET");
  // Saturday 2026-12-05 noon: Monday.
  EXPECT_EQ(OpensAt(hours, absl::FromCivil(absl::CivilMinute(2026, 12, 5, 12, 0), absl::UTCTimeZone())),
            "Monday 09:00 CET");
  // Friday evening after closing: Monday.
  EXPECT_EQ(OpensAt(hours, absl::FromCivil(absl::CivilMinute(2026, 12, 4, 19, 0), absl::UTCTimeZone())),
            "Monday 09:00 CET");
}

constexpr char kConfig[] = R"(sources:
  generic: {type: generic, secret: s}
teams:
  support:
    destinations: [helpdesk]
    acknowledge:
      via: [x-replies, wa-replies]
      levels: [urgent, high]
      complaint: true
destinations:
  helpdesk: {type: file, path: /tmp/t.jsonl}
  x-replies: {type: x, url: "https://api.x.com", access_token: t}
  wa-replies: {type: whatsapp, url: "https://graph.facebook.com/v25.0", access_token: t, phone_number_id: "1"}
routing:
  default_team: support
)";

router::RoutedMessage Routed(const std::string& platform, const std::string& kind, const std::string& channel) {
  router::RoutedMessage r;
  r.message.platform = platform;
  r.message.kind = kind;
  r.message.channel = channel;
  r.message.author.id = "customer";
  r.message.account_id = "brand";
  r.triage.level = router::Level::kUrgent;
  r.triage.complaint = true;
  r.triage.team = "support";
  return r;
}

TEST(AcknowledgeTest, AReplyDestinationIsChosenByTheBlocksConditionsAndWhatEachCanAnswer) {
  absl::StatusOr<config::Config> config = config::LoadConfigString(kConfig, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const config::AcknowledgeOptions& ack = *config->teams[0].acknowledge;
  EXPECT_EQ(ack.channels, std::vector<std::string>{"private"});
  EXPECT_EQ(ack.once_per, absl::Hours(24));
  const std::vector<const config::DestinationOptions*> via = {&config->destinations[1], &config->destinations[2]};
  auto which = [&](const router::RoutedMessage& r, std::vector<std::string> brands = {}) {
    const config::DestinationOptions* d = WhichReplyDestination(ack, via, r, brands);
    return d == nullptr ? std::string("none") : d->name;
  };
  EXPECT_EQ(which(Routed("x", "direct_message", "private")), "x-replies");
  EXPECT_EQ(which(Routed("whatsapp", "direct_message", "private")), "wa-replies");  // x cannot answer it
  EXPECT_EQ(which(Routed("x", "mention", "public")), "none");  // public replies only when enabled
  EXPECT_EQ(which(Routed("messenger", "direct_message", "private")), "none");  // no via answers it
  router::RoutedMessage low = Routed("x", "direct_message", "private");
  low.triage.level = router::Level::kLow;
  EXPECT_EQ(which(low), "none");
  router::RoutedMessage praise = Routed("x", "direct_message", "private");
  praise.triage.complaint = false;
  EXPECT_EQ(which(praise), "none");
  router::RoutedMessage own = Routed("x", "direct_message", "private");
  own.message.author.id = "brand";
  EXPECT_EQ(which(own), "none");
  EXPECT_EQ(which(Routed("x", "direct_message", "private"), {"customer"}), "none");  // a brand id
  router::RoutedMessage dropped = Routed("x", "direct_message", "private");
  dropped.triage.dropped = true;
  EXPECT_EQ(which(dropped), "none");
}

// A routing rule may say yes (whatever the block's conditions: a VIP's public mention) or no
// (never for legal threats), through the routed message.
TEST(AcknowledgeTest, ARoutingRuleSaysYesOrNoBeforeTheBlocksConditions) {
  const std::string yaml = absl::StrCat(kConfig, R"(  rules:
    - name: quiet-legal
      when: {text_regex: "lawyer"}
      acknowledge: false
    - name: vip
      when: {authors: ["@vip"]}
      acknowledge: true
)");
  absl::StatusOr<config::Config> config = config::LoadConfigString(yaml, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<std::shared_ptr<const router::Triager>> triager =
      router::Triager::Create(config->scoring, config->routing);
  ASSERT_TRUE(triager.ok()) << triager.status();
  const std::vector<const config::DestinationOptions*> via = {&config->destinations[1], &config->destinations[2]};
  auto which = [&](const std::string& handle, const std::string& text, const std::string& channel) {
    router::Message m;
    m.platform = "x";
    m.kind = "mention";
    m.channel = channel;
    m.author.id = "customer";
    m.author.handle = handle;
    m.text = text;
    const router::RoutedMessage r = (*triager)->Triage(m, absl::Now());
    const config::DestinationOptions* d = WhichReplyDestination(*config->teams[0].acknowledge, via, r, {});
    return std::pair(d == nullptr ? std::string("none") : d->name, absl::StrJoin(r.triage.reasons, "; "));
  };
  // A low, public, non-complaint mention: the block alone says no; the VIP rule says yes.
  EXPECT_EQ(which("someone", "hello there", "public").first, "none");
  const auto vip = which("vip", "hello there", "public");
  EXPECT_EQ(vip.first, "x-replies");
  EXPECT_TRUE(absl::StrContains(vip.second, "rule vip acknowledges the customer")) << vip.second;
  // The first rule that says decides: a VIP's legal threat is not acknowledged.
  const auto legal = which("vip", "my lawyer will call", "private");
  EXPECT_EQ(legal.first, "none");
  EXPECT_TRUE(absl::StrContains(legal.second, "rule quiet-legal does not acknowledge the customer")) << legal.second;
}

TEST(AcknowledgeTest, TheBlockIsCheckedWhenTheConfigLoads) {
  auto errors = [](const std::string& ack, const std::string& team_destinations = "[helpdesk]") {
    const std::string yaml = absl::StrCat(R"(sources:
  generic: {type: generic, secret: s}
teams:
  support:
    destinations: )", team_destinations, R"(
    acknowledge:
)", ack, R"(
destinations:
  helpdesk: {type: zendesk, url: "https://a.zendesk.com", email: a@b.c, api_token: t}
  x-replies: {type: x, url: "https://api.x.com", access_token: t}
routing: {default_team: support}
)");
    absl::StatusOr<config::Config> config = config::LoadConfigString(yaml, "test.yaml");
    return config.ok() ? std::string() : std::string(config.status().message());
  };
  EXPECT_EQ(errors("      via: [x-replies]"), "");
  EXPECT_TRUE(absl::StrContains(errors("      via: [nowhere]"), "unknown destination 'nowhere'"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [helpdesk]"), "sends no replies"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]", "[helpdesk, x-replies]"), "only sends acknowledgements"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]\n      channels: [dm]"), "unknown channel 'dm'"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]\n      fallback: \"{{ahead}} ahead\""),
                                "cannot name ahead"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]\n      text: \"back at {{opens_at}}\""), "needs hours"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]\n      text: \"{{eta}}\""), "unknown field {{eta}}"));
  EXPECT_TRUE(absl::StrContains(errors("      via: [x-replies]\n      max_delay: 10s"), "max_delay"));
  const std::string no_block = R"(sources: {generic: {type: generic, secret: s}}
teams: {support: {destinations: [out]}}
destinations: {out: {type: file, path: /tmp/o.jsonl}}
routing:
  default_team: support
  rules: [{name: vip, when: {authors: [vip]}, acknowledge: true}]
)";
  const absl::StatusOr<config::Config> without = config::LoadConfigString(no_block, "test.yaml");
  ASSERT_FALSE(without.ok());
  EXPECT_TRUE(absl::StrContains(without.status().message(), "no team has an acknowledge block")) << without.status();
  EXPECT_EQ(errors("      via: [x-replies]\n      hours: {zone: Europe/Paris, days: [mon, fri], from: \"09:00\", to: "
                   "\"18:00\"}\n      closed_text: \"back at {{opens_at}}, ref {{reference}}\""),
            "");
}

}  // namespace
}  // namespace triage::daemon
