#include "router/scorer.h"

#include <gtest/gtest.h>

namespace triage::router {
namespace {

ScorerOptions TestOptions() {
  ScorerOptions options;
  options.categories = {
      {"outage", 45, {"down", "not working", "outage"}},
      {"billing", 30, {"refund", "charged twice"}},
      {"praise", -10, {"thanks"}},
  };
  return options;
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Triage ScoreText(const Scorer& scorer, const std::string& text,
                 std::optional<int64_t> followers = std::nullopt, bool verified = false) {
  Message m;
  m.text = text;
  m.author.followers = followers;
  m.author.verified = verified;
  Triage t;
  scorer.Score(m, kNow, &t);
  return t;
}

struct CategoryCase {
  std::string text;
  std::vector<std::string> categories;
  int urgency;
};

TEST(ScorerTest, MatchesCategoriesOnWordBoundariesCaseInsensitively) {
  const Scorer scorer(TestOptions());
  const std::vector<CategoryCase> cases = {
      {"The site is DOWN again", {"outage"}, 45},
      {"I will download the app", {}, 0},           // "down" inside a word
      {"it's not working, refund please", {"outage", "billing"}, 75},
      {"Charged twice!!", {"billing"}, 30},
      {"charged twiceover", {}, 0},                 // phrase needs a boundary at its end
      {"thanks, all good", {"praise"}, 0},         // negative weights clamp at 0
      {"down down down outage", {"outage"}, 45},   // a category counts once
      {"", {}, 0},
  };
  for (const CategoryCase& c : cases) {
    const Triage t = ScoreText(scorer, c.text);
    std::vector<std::string> names;
    for (const CategoryMatch& match : t.categories) names.push_back(match.name);
    EXPECT_EQ(names, c.categories) << c.text;
    EXPECT_EQ(t.urgency, c.urgency) << c.text;
  }
}

TEST(ScorerTest, RecordsMatchedTermsAsReasons) {
  const Scorer scorer(TestOptions());
  const Triage t = ScoreText(scorer, "outage, site down");
  ASSERT_EQ(t.categories.size(), 1u);
  EXPECT_EQ(t.categories[0].terms, (std::vector<std::string>{"down", "outage"}));
  ASSERT_FALSE(t.reasons.empty());
  EXPECT_EQ(t.reasons[0], "category outage (+45) matched 'down', 'outage'");
}

TEST(ScorerTest, ReachIsLogScaleCappedAndKnowsWhenUnknown) {
  const Scorer scorer(TestOptions());
  EXPECT_FALSE(ScoreText(scorer, "hi").reach_known);
  EXPECT_EQ(ScoreText(scorer, "hi").reach, 0);
  EXPECT_EQ(ScoreText(scorer, "hi", 0).reach, 0);
  EXPECT_TRUE(ScoreText(scorer, "hi", 0).reach_known);
  // 80 points at the 10M cap; log10(1001)/log10(10M+1) * 80 = 34.3 at 1000 followers.
  EXPECT_EQ(ScoreText(scorer, "hi", 1000).reach, 34);
  EXPECT_EQ(ScoreText(scorer, "hi", 10'000'000).reach, 80);
  EXPECT_EQ(ScoreText(scorer, "hi", 900'000'000).reach, 80);
  EXPECT_EQ(ScoreText(scorer, "hi", 10'000'000, true).reach, 100);
  EXPECT_EQ(ScoreText(scorer, "hi", std::nullopt, true).reach, 20);
  // More followers never lower reach.
  int previous = 0;
  for (int64_t f = 1; f < 100'000'000; f *= 3) {
    const int reach = ScoreText(scorer, "hi", f).reach;
    EXPECT_GE(reach, previous) << f;
    previous = reach;
  }
}

TEST(ScorerTest, ReachAloneNeverMakesAMessageUrgent) {
  const Scorer scorer(TestOptions());
  const Triage t = ScoreText(scorer, "nice weather", 500'000'000, true);
  EXPECT_EQ(t.priority, 25);
  EXPECT_EQ(t.level, Level::kNormal);
}

TEST(ScorerTest, LevelsAndSlaFollowPriority) {
  const Scorer scorer(TestOptions());
  struct Case {
    std::string text;
    std::optional<int64_t> followers;
    bool verified;
    Level level;
    absl::Duration sla;
  };
  const std::vector<Case> cases = {
      // 0.75 x 75 + 0.25 x 100 = 81
      {"down and not working, refund", 10'000'000, true, Level::kUrgent, absl::Minutes(15)},
      {"refund", 10'000'000, true, Level::kHigh, absl::Hours(1)},  // 22.5 + 25 = 48
      {"refund", std::nullopt, false, Level::kNormal, absl::Hours(4)},  // 22.5 -> 23
      {"hello", std::nullopt, false, Level::kLow, absl::Hours(24)},
  };
  for (const Case& c : cases) {
    const Triage t = ScoreText(scorer, c.text, c.followers, c.verified);
    EXPECT_EQ(t.level, c.level) << c.text << " priority " << t.priority;
    EXPECT_EQ(t.sla_deadline, kNow + c.sla) << c.text;
  }
}

TEST(ScorerOptionsTest, ValidateRejectsInconsistentOptions) {
  ScorerOptions options;
  EXPECT_TRUE(options.Validate().ok());
  options.reach_weight = 0.5;
  EXPECT_FALSE(options.Validate().ok());
  options = ScorerOptions();
  options.levels[1].min_priority = options.levels[0].min_priority;
  EXPECT_FALSE(options.Validate().ok());
  options = ScorerOptions();
  options.levels[3].min_priority = 5;
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace triage::router
