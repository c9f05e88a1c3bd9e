#include "router/router.h"

#include <gtest/gtest.h>

namespace triage::router {
namespace {

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

Triage Decide(const Router& router, std::vector<std::string> categories, int reach = 0,
              Level level = Level::kNormal, std::string platform = "facebook") {
  Message m;
  m.platform = std::move(platform);
  Triage t;
  for (std::string& c : categories) t.categories.push_back({std::move(c), {}, 10});
  t.reach = reach;
  t.level = level;
  router.Route(m, &t);
  return t;
}

TEST(RouterTest, FirstAssigningRuleWinsAndInformsAreCollected) {
  const Router router(TestRouting());
  const Triage t = Decide(router, {"billing", "legal"}, 80);
  EXPECT_EQ(t.team, "legal");  // legal comes before billing in the rule order
  EXPECT_EQ(t.rule, "legal");
  EXPECT_EQ(t.informed, (std::vector<std::string>{"pr", "support"}));
}

TEST(RouterTest, DefaultTeamWhenNoRuleAssigns) {
  const Router router(TestRouting());
  const Triage t = Decide(router, {});
  EXPECT_EQ(t.team, "support");
  EXPECT_EQ(t.rule, "default");
  EXPECT_TRUE(t.informed.empty());
}

TEST(RouterTest, OwnerIsNotAlsoInformed) {
  const Router router(TestRouting());
  const Triage t = Decide(router, {}, 90);  // loud informs pr and support; support owns it
  EXPECT_EQ(t.team, "support");
  EXPECT_EQ(t.informed, (std::vector<std::string>{"pr"}));
}

TEST(RouterTest, PlatformAndLevelConditions) {
  const Router router(TestRouting());
  EXPECT_EQ(Decide(router, {}, 0, Level::kLow, "x").team, "sales");
  EXPECT_EQ(Decide(router, {}, 0, Level::kHigh, "x").team, "support");
  EXPECT_EQ(Decide(router, {}, 0, Level::kLow, "facebook").team, "support");
}

TEST(RouterTest, ReasonsNameTheRules) {
  const Router router(TestRouting());
  const Triage t = Decide(router, {"legal"});
  EXPECT_EQ(t.reasons, (std::vector<std::string>{"rule legal assigned team legal",
                                                 "rule legal informs pr"}));
}

TEST(RouterOptionsTest, ValidateCatchesUnknownTeams) {
  RouterOptions options = TestRouting();
  EXPECT_TRUE(options.Validate().ok());
  options.rules[1].team = "finance";
  EXPECT_EQ(options.Validate().message(), "rule 'billing' names unknown team 'finance'");
  options = TestRouting();
  options.default_team = "";
  EXPECT_FALSE(options.Validate().ok());
  options = TestRouting();
  options.rules[0].name = "billing";
  EXPECT_FALSE(options.Validate().ok());
}

TEST(TriagerTest, ScoresThenRoutes) {
  ScorerOptions scorer;
  scorer.categories = {{"billing", 30, {"refund"}}};
  const Triager triager(scorer, TestRouting());
  Message m;
  m.text = "Refund me";
  const RoutedMessage r = triager.Triage(m, absl::UnixEpoch());
  EXPECT_EQ(r.triage.team, "billing");
  EXPECT_EQ(r.triage.urgency, 30);
  EXPECT_EQ(r.received_at, absl::UnixEpoch());
}

}  // namespace
}  // namespace triage::router
