#include "router/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace triage::router {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

RouterOptions TestRouting() {
  RouterOptions options;
  options.teams = {"support", "billing", "legal", "pr", "sales"};
  options.default_team = "support";
  RuleOptions legal{.name = "legal", .categories_any = {"legal"}, .team = "legal", .inform = {"pr"}};
  RuleOptions billing{.name = "billing", .categories_any = {"billing"}, .team = "billing"};
  RuleOptions loud{.name = "loud", .min_reach = 70, .inform = {"pr", "support"}};
  RuleOptions x_sales{.name = "x-sales", .platforms = {"x"}, .levels = {Level::kLow}, .team = "sales"};
  options.rules = {legal, billing, loud, x_sales};
  return options;
}

std::shared_ptr<const Router> MakeRouter(RouterOptions options = TestRouting()) {
  auto router = Router::Create(std::move(options));
  EXPECT_TRUE(router.ok()) << router.status();
  return *router;
}

Triage Decide(const Router& router, std::vector<std::string> categories, int reach = 0,
              Level level = Level::kNormal, std::string platform = "facebook") {
  Message m;
  m.platform = std::move(platform);
  Triage t;
  for (std::string& c : categories) t.categories.push_back({std::move(c), {}, 10});
  t.reach = reach;
  t.level = level;
  router.Route(m, kNow, nullptr, &t);
  return t;
}

TEST(RouterTest, FirstAssigningRuleWinsAndInformsAreCollected) {
  const auto router = MakeRouter();
  const Triage t = Decide(*router, {"billing", "legal"}, 80);
  EXPECT_EQ(t.team, "legal");
  EXPECT_EQ(t.rule, "legal");
  EXPECT_EQ(t.informed, (std::vector<std::string>{"pr", "support"}));
}

TEST(RouterTest, DefaultTeamWhenNoRuleAssigns) {
  const auto router = MakeRouter();
  const Triage t = Decide(*router, {});
  EXPECT_EQ(t.team, "support");
  EXPECT_EQ(t.rule, "default");
  EXPECT_TRUE(t.informed.empty());
}

TEST(RouterTest, OwnerIsNotAlsoInformed) {
  const auto router = MakeRouter();
  const Triage t = Decide(*router, {}, 90);
  EXPECT_EQ(t.team, "support");
  EXPECT_EQ(t.informed, (std::vector<std::string>{"pr"}));
}

TEST(RouterTest, ReasonsNameTheRules) {
  const auto router = MakeRouter();
  const Triage t = Decide(*router, {"legal"});
  EXPECT_EQ(t.reasons, (std::vector<std::string>{"rule legal assigned team legal", "rule legal informs pr"}));
}

// One rule per condition; each case says whether the rule must match.
struct ConditionCase {
  std::string what;
  RuleOptions rule;
  bool matches;
};

TEST(RouterTest, EveryConditionDecides) {
  Message m;
  m.source = "x-acme";
  m.platform = "x";
  m.channel = "private";
  m.kind = "direct_message";
  m.language = "fr";
  m.text = "Mon colis n'est jamais arriv\xC3\xA9, commande #A-4471";
  m.author = {.id = "42", .handle = "Dana", .followers = 5000, .verified = true};
  Triage scored;
  scored.categories = {{"delivery", {}, 25}, {"anger", {}, 20}};
  scored.urgency = 45;
  scored.reach = 50;
  scored.priority = 46;
  scored.level = Level::kHigh;
  scored.complaint = true;
  auto rule = [](RuleOptions r) {
    r.name = "r";
    r.team = "billing";
    return r;
  };
  const std::vector<ConditionCase> cases = {
      {"source", rule({.sources = {"x-acme"}}), true},
      {"other source", rule({.sources = {"meta"}}), false},
      {"platform", rule({.platforms = {"x", "facebook"}}), true},
      {"channel", rule({.channels = {"public"}}), false},
      {"kind", rule({.kinds = {"direct_message"}}), true},
      {"categories_any", rule({.categories_any = {"legal", "anger"}}), true},
      {"categories_all", rule({.categories_all = {"delivery", "anger"}}), true},
      {"categories_all missing one", rule({.categories_all = {"delivery", "legal"}}), false},
      {"level", rule({.levels = {Level::kUrgent}}), false},
      {"urgency range", rule({.min_urgency = 40, .max_urgency = 50}), true},
      {"urgency above max", rule({.max_urgency = 44}), false},
      {"reach range", rule({.min_reach = 51}), false},
      {"priority range", rule({.min_priority = 46, .max_priority = 46}), true},
      {"followers", rule({.min_followers = 1000, .max_followers = 10000}), true},
      {"followers too few", rule({.min_followers = 10000}), false},
      {"verified", rule({.verified = true}), true},
      {"not verified", rule({.verified = false}), false},
      {"complaint", rule({.complaint = true}), true},
      {"language", rule({.languages = {"en"}}), false},
      {"author by handle", rule({.authors = {"@dana"}}), true},
      {"author by id", rule({.authors = {"42"}}), true},
      {"other author", rule({.authors = {"43"}}), false},
      {"text regex on folded text", rule({.text_regex = "commande\\s+#a-\\d+"}), true},
      {"accent-folded regex", rule({.text_regex = "jamais arrive\\b"}), true},
      {"regex without match", rule({.text_regex = "rembours"}), false},
  };
  for (const ConditionCase& c : cases) {
    RouterOptions options = TestRouting();
    options.rules = {c.rule};
    const auto router = MakeRouter(options);
    Triage t = scored;
    router->Route(m, kNow, nullptr, &t);
    EXPECT_EQ(t.team == "billing", c.matches) << c.what;
  }
}

TEST(RouterTest, UnknownFollowersNeverMatchFollowerBounds) {
  RouterOptions options = TestRouting();
  options.rules = {{.name = "small", .max_followers = 100, .team = "sales"}};
  const auto router = MakeRouter(options);
  Message m;
  Triage t;
  router->Route(m, kNow, nullptr, &t);
  EXPECT_EQ(t.team, "support");
}

TEST(RouterTest, ActionsTagsLevelsAndDrop) {
  RouterOptions options = TestRouting();
  options.rules = {
      {.name = "spam", .text_regex = "free followers", .drop = true},
      {.name = "vip", .authors = {"vip"}, .tags = {"vip"}, .raise_levels = 1},
      {.name = "praise", .categories_any = {"praise"}, .tags = {"kudos"}, .set_level = Level::kLow},
      {.name = "tag-all", .tags = {"social", "vip"}},
  };
  const auto router = MakeRouter(options);
  Message m;
  m.author.id = "vip";
  Triage t;
  t.level = Level::kNormal;
  router->Route(m, kNow, nullptr, &t);
  EXPECT_EQ(t.level, Level::kHigh);
  EXPECT_EQ(t.tags, (std::vector<std::string>{"vip", "social"}));
  EXPECT_FALSE(t.dropped);

  Triage praised;
  praised.level = Level::kHigh;
  praised.categories = {{"praise", {}, -10}};
  m.author.id = "vip";
  router->Route(m, kNow, nullptr, &praised);
  EXPECT_EQ(praised.level, Level::kUrgent) << "vip raised it first; the praise rule cannot lower it";

  Message spam;
  spam.text = "Get FREE followers now";
  Triage dropped;
  router->Route(spam, kNow, nullptr, &dropped);
  EXPECT_TRUE(dropped.dropped);
  EXPECT_EQ(dropped.rule, "spam");
  EXPECT_TRUE(dropped.informed.empty());
}

TEST(RouterTest, FollowUpsGoToTheConversationsOwner) {
  const auto router = MakeRouter();
  Message m;
  m.conversation_id = "dm:42";
  Triage t;
  t.categories = {{"billing", {}, 30}};
  const ConversationOwner owner{"legal", std::nullopt};
  router->Route(m, kNow, &owner, &t);
  EXPECT_EQ(t.team, "legal");
  EXPECT_EQ(t.rule, "conversation");
  // The rule that matched does not claim a team it did not get.
  EXPECT_THAT(t.reasons, testing::Contains("rule billing would assign team billing, but the conversation stays with its owner"));
  EXPECT_THAT(t.reasons, testing::Not(testing::Contains("rule billing assigned team billing")));
  const ConversationOwner gone{"a-team-removed-from-config", std::nullopt};
  Triage u;
  u.categories = {{"billing", {}, 30}};
  router->Route(m, kNow, &gone, &u);
  EXPECT_EQ(u.team, "billing") << "an owner that no longer exists is ignored";
}

// "Double charge, I'm calling a lawyer" after a low question to sales: more urgent than the
// conversation has been, and the legal rule wants it, so it moves; as urgent as before, it stays.
TEST(RouterTest, AMoreUrgentFollowUpMovesTheConversationToTheTeamItsRuleAssigns) {
  const auto router = MakeRouter();
  Message m;
  m.conversation_id = "dm:42";
  const ConversationOwner sales{"sales", Level::kLow};
  Triage t;
  t.categories = {{"legal", {}, 60}};
  t.level = Level::kUrgent;
  router->Route(m, kNow, &sales, &t);
  EXPECT_EQ(t.team, "legal");
  EXPECT_EQ(t.rule, "legal");
  EXPECT_THAT(t.reasons, testing::Contains("follow-up in conversation dm:42 raised the level from low to urgent: "
                                           "it moves from sales to legal"));
  const ConversationOwner urgent_sales{"sales", Level::kUrgent};
  Triage same;
  same.categories = {{"legal", {}, 60}};
  same.level = Level::kUrgent;
  router->Route(m, kNow, &urgent_sales, &same);
  EXPECT_EQ(same.team, "sales");
  EXPECT_EQ(same.rule, "conversation");
  // Without a rule's team, more urgent still stays with the owner.
  Triage plain;
  plain.level = Level::kUrgent;
  router->Route(m, kNow, &sales, &plain);
  EXPECT_EQ(plain.team, "sales");
}

TEST(TimeWindowTest, BusinessHoursInParisAcrossTheSpringDstChange) {
  TimeWindow window;
  window.zone_name = "Europe/Paris";
  ASSERT_TRUE(absl::LoadTimeZone(window.zone_name, &window.zone));
  window.days = {absl::Weekday::monday, absl::Weekday::tuesday, absl::Weekday::wednesday,
                 absl::Weekday::thursday, absl::Weekday::friday};
  window.from_minute = 9 * 60;
  window.to_minute = 18 * 60;
  const absl::TimeZone utc = absl::UTCTimeZone();
  auto at = [&](int y, int mo, int d, int h, int mi) {
    return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), utc);
  };
  // Friday 27 March 2026 (CET, UTC+1) and Monday 30 March 2026 (CEST, UTC+2).
  EXPECT_FALSE(window.Contains(at(2026, 3, 27, 7, 30)));  // 08:30 in Paris
  EXPECT_TRUE(window.Contains(at(2026, 3, 27, 8, 30)));   // 09:30
  EXPECT_TRUE(window.Contains(at(2026, 3, 30, 7, 30)));   // 09:30 after the change
  EXPECT_FALSE(window.Contains(at(2026, 3, 30, 6, 30)));  // 08:30
  EXPECT_TRUE(window.Contains(at(2026, 3, 30, 15, 59)));  // 17:59
  EXPECT_FALSE(window.Contains(at(2026, 3, 30, 16, 0)));  // 18:00
  EXPECT_FALSE(window.Contains(at(2026, 3, 28, 10, 0)));  // Saturday
  // Overnight 22:00-06:00 belongs to the day it started: Friday night runs into Saturday.
  window.from_minute = 22 * 60;
  window.to_minute = 6 * 60;
  window.days = {absl::Weekday::friday};
  EXPECT_TRUE(window.Contains(at(2026, 3, 27, 22, 0)));   // Fri 23:00
  EXPECT_TRUE(window.Contains(at(2026, 3, 28, 3, 0)));    // Sat 04:00, Friday's night
  EXPECT_FALSE(window.Contains(at(2026, 3, 28, 22, 0)));  // Sat 23:00
}

TEST(RouterOptionsTest, ValidateCatchesUnknownTeamsAndEmptyRules) {
  RouterOptions options = TestRouting();
  EXPECT_TRUE(Router::Create(options).ok());
  options.rules[1].team = "finance";
  EXPECT_EQ(Router::Create(options).status().message(), "rule 'billing' names unknown team 'finance'");
  options = TestRouting();
  options.default_team = "";
  EXPECT_FALSE(Router::Create(options).ok());
  options = TestRouting();
  options.rules[0].name = "billing";
  EXPECT_FALSE(Router::Create(options).ok());
  options = TestRouting();
  options.rules = {{.name = "nothing"}};
  EXPECT_FALSE(Router::Create(options).ok());
  options = TestRouting();
  options.rules = {{.name = "bad-regex", .text_regex = "(unclosed", .team = "sales"}};
  EXPECT_FALSE(Router::Create(options).ok());
}

TEST(TriagerTest, ScoresRoutesAndMovesTheSlaWithTheLevel) {
  ScorerOptions scorer;
  scorer.categories = {{"billing", 30, {"refund"}}};
  RouterOptions routing = TestRouting();
  routing.rules.push_back({.name = "refunds-are-urgent", .categories_any = {"billing"}, .set_level = Level::kUrgent});
  const auto triager = Triager::Create(scorer, routing);
  ASSERT_TRUE(triager.ok()) << triager.status();
  Message m;
  m.text = "Refund me";
  const RoutedMessage r = (*triager)->Triage(m, absl::UnixEpoch());
  EXPECT_EQ(r.triage.team, "billing");
  EXPECT_EQ(r.triage.urgency, 30);
  EXPECT_TRUE(r.triage.complaint);
  EXPECT_EQ(r.triage.level, Level::kUrgent);
  EXPECT_EQ(r.triage.sla_deadline, absl::UnixEpoch() + absl::Minutes(15));
}

}  // namespace
}  // namespace triage::router
