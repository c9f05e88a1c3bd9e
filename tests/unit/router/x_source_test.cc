#include <gtest/gtest.h>

#include "router/sources/x/x_source.h"
#include "tests/test_util.h"

namespace triage::router {
namespace {

using testing::ReadFixture;

ParseContext Context() {
  ParseContext c;
  c.source = "x-acme";
  return c;
}

ParseResult Parse(const std::string& fixture, const ParseContext& context = Context()) {
  auto result = ParseXPayload(ReadFixture("inbound/" + fixture), context);
  EXPECT_TRUE(result.ok()) << fixture << ": " << result.status();
  return result.ok() ? *std::move(result) : ParseResult();
}

TEST(XSourceTest, AccountActivityMentionUsesTheFullTextOfATruncatedTweet) {
  const ParseResult r = Parse("x_aaa_tweet_create_mention.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.source, "x-acme");
  EXPECT_EQ(m.platform, "x");
  EXPECT_EQ(m.id, "1900000000000000123");  // id_str: the number exceeds 2^53
  EXPECT_EQ(m.kind, "mention");  // in_reply_to_user_id without a status id: a mention
  EXPECT_EQ(m.channel, "public");
  EXPECT_EQ(m.account_id, "1000000000000000001");
  EXPECT_EQ(m.text,
            "@AcmeSupport my order #A-4471 never arrived and nobody answers the phone. This is the "
            "third time I am asking, please help before I cancel my subscription and write about "
            "it. #customerservice");
  EXPECT_EQ(m.author.id, "2000000000000000002");
  EXPECT_EQ(m.author.handle, "dana_example");
  EXPECT_EQ(m.author.name, "Dana Example");
  EXPECT_EQ(m.author.followers, 48210);
  EXPECT_FALSE(m.author.verified);
  EXPECT_EQ(m.language, "en");
  EXPECT_EQ(m.created_at, absl::FromUnixMillis(1772529342000));
  EXPECT_EQ(m.url, "https://x.com/dana_example/status/1900000000000000123");
  EXPECT_EQ(r.events.at("mention"), 1);
}

TEST(XSourceTest, RetweetScoresTheOriginalWordsUnderTheRetweeter) {
  const ParseResult r = Parse("x_aaa_retweet.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.kind, "retweet");
  EXPECT_EQ(m.id, "1900000000000000200");
  EXPECT_EQ(m.author.handle, "lee_sample");
  EXPECT_EQ(m.author.followers, 320);
  EXPECT_NE(m.text.find("write about it. #customerservice"), std::string::npos);
  EXPECT_EQ(m.conversation_id, "1900000000000000123");
}

TEST(XSourceTest, QuoteAndReplyKindsAndTheBrandsOwnReplyIsIgnored) {
  const ParseResult r = Parse("x_aaa_quote_and_reply.json");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].kind, "quote");
  EXPECT_EQ(r.messages[0].text, "Great, another outage. Thanks @AcmeSupport \xF0\x9F\x98\xA1 https://t.co/q");
  EXPECT_TRUE(r.messages[0].author.verified);
  EXPECT_EQ(r.messages[1].kind, "reply");
  EXPECT_EQ(r.messages[1].conversation_id, "1900000000000000290");
  EXPECT_EQ(r.messages[1].created_at, absl::FromUnixSeconds(1772539500));  // from created_at
  EXPECT_EQ(r.ignored.at("own_account"), 1);
}

TEST(XSourceTest, DirectMessageTakesTheAuthorFromTheUsersMap) {
  const ParseResult r = Parse("x_aaa_direct_message.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.kind, "direct_message");
  EXPECT_EQ(m.channel, "private");
  EXPECT_EQ(m.id, "1900000000000000777");
  EXPECT_EQ(m.author.id, "3000000000000000003");
  EXPECT_EQ(m.author.handle, "sam_placeholder");
  EXPECT_EQ(m.author.followers, 152);
  EXPECT_EQ(m.conversation_id, "dm:3000000000000000003");
  EXPECT_EQ(m.created_at, absl::FromUnixMillis(1772530000123));
  EXPECT_EQ(m.text, "Hi, I was charged twice for invoice 88-1203. Can you refund one of them?");
}

TEST(XSourceTest, OwnDirectMessagesAndNonMessageEventsAreCountedNotRouted) {
  const ParseResult r = Parse("x_aaa_own_dm_and_events.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.events.at("own_direct_message"), 1);
  EXPECT_EQ(r.events.at("favorite"), 1);
  EXPECT_EQ(r.events.at("follow"), 1);
  EXPECT_EQ(r.events.at("direct_message_indicate_typing"), 1);
  EXPECT_EQ(r.ignored.at("own_account"), 1);
  EXPECT_EQ(r.ignored.at("not_a_message"), 3);
}

TEST(XSourceTest, FilteredStreamLongPostUsesNoteTweetAndV2User) {
  ParseContext context = Context();
  const ParseResult r = Parse("x_filtered_stream_long_post.json", context);
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.kind, "reply");
  EXPECT_NE(m.text.find("Caf\xC3\xA9 owners deserve better."), std::string::npos);
  EXPECT_EQ(m.author.handle, "bo_business");
  EXPECT_EQ(m.author.followers, 98000);
  EXPECT_TRUE(m.author.verified);
  EXPECT_EQ(m.author.verified_type, "business");
  EXPECT_EQ(m.created_at, absl::FromUnixSeconds(1772542800));
  // Brand ids from config mark the brand's own posts on envelopes without for_user_id.
  context.brand_ids = {"8000000000000000008"};
  EXPECT_TRUE(Parse("x_filtered_stream_long_post.json", context).messages.empty());
}

TEST(XSourceTest, ActivityApiMentionKeysOnThePostIdNotTheEventUuid) {
  const ParseResult r = Parse("x_xaa_post_mention_create.json");
  ASSERT_EQ(r.messages.size(), 1u);
  const Message& m = r.messages[0];
  EXPECT_EQ(m.id, "1900000000000000999");
  EXPECT_EQ(m.kind, "mention");
  EXPECT_EQ(m.author.followers, 1250300);
  EXPECT_EQ(m.author.verified_type, "blue");
  EXPECT_EQ(m.account_id, "1000000000000000001");
}

TEST(XSourceTest, ActivityApiDmUnwrapsItsUsers) {
  const ParseResult r = Parse("x_xaa_dm_received.json");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].author.handle, "ana_h");
  EXPECT_EQ(r.messages[0].author.followers, 87);
  EXPECT_EQ(r.messages[0].kind, "direct_message");
  const ParseResult like = Parse("x_xaa_like.json");
  EXPECT_TRUE(like.messages.empty());
  EXPECT_EQ(like.events.at("like"), 1);
}

TEST(XSourceTest, HostileShapesAreSkippedNotFatal) {
  // Four tweets: not an object, an empty id, a user that is not an object, no user at all.
  // None has an id and an author; none may pass for the brand's own post either.
  const ParseResult r = Parse("x_hostile_shapes.json");
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.events.at("tweet"), 4);
  EXPECT_EQ(r.ignored.at("could_not_read"), 4);
  EXPECT_FALSE(r.ignored.contains("own_account"));
}

TEST(XSourceTest, RejectsWhatIsNotAnXEnvelope) {
  EXPECT_FALSE(ParseXPayload("{}", Context()).ok());
  EXPECT_FALSE(ParseXPayload("[1]", Context()).ok());
  EXPECT_FALSE(ParseXPayload("{\"for_user_id\":", Context()).ok());
}

TEST(SourceTest, KnownAuthorsAndDefaultReachFillWhatPlatformsOmit) {
  ParseContext context;
  context.known_authors = {{"", "@Dana_Example", 500000, true, "press"}};
  context.default_reach = 10;
  Author dana{.id = "1", .handle = "dana_example", .followers = 48210};
  ApplyAuthorKnowledge(context, &dana);
  EXPECT_EQ(dana.followers, 500000);
  EXPECT_TRUE(dana.verified);
  EXPECT_EQ(dana.known_as, "press");
  Author unknown{.id = "2"};
  ApplyAuthorKnowledge(context, &unknown);
  EXPECT_EQ(unknown.assumed_reach, 10);
  EXPECT_TRUE(unknown.known_as.empty());
}

}  // namespace
}  // namespace triage::router
