#include "router/scorer.h"

#include <gtest/gtest.h>

#include "router/matcher.h"
#include "router/text.h"

namespace triage::router {
namespace {

ScorerOptions TestOptions() {
  ScorerOptions options;
  options.categories = {
      {"outage", 45, {"down", "not working", "outage", "crash*"}},
      {"billing", 30, {"refund", "charged twice", "can't pay"}},
      {"praise", -10, {"thanks", "great", "love", "happy"}},
      {"sales", 0, {"pricing", "demo"}},
  };
  return options;
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::shared_ptr<const Scorer> MakeScorer(ScorerOptions options = TestOptions()) {
  auto scorer = Scorer::Create(std::move(options));
  EXPECT_TRUE(scorer.ok()) << scorer.status();
  return *scorer;
}

Triage ScoreText(const Scorer& scorer, const std::string& text,
                 std::optional<int64_t> followers = std::nullopt, bool verified = false,
                 const std::string& verified_type = "") {
  Message m;
  m.text = text;
  m.author.followers = followers;
  m.author.verified = verified;
  m.author.verified_type = verified_type;
  Triage t;
  scorer.Score(m, kNow, &t);
  return t;
}

std::vector<std::string> Names(const Triage& t) {
  std::vector<std::string> names;
  for (const CategoryMatch& match : t.categories) names.push_back(match.name);
  return names;
}

struct Case {
  std::string text;
  std::vector<std::string> categories;
  int urgency;
  bool complaint;
};

void ExpectCases(const Scorer& scorer, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    const Triage t = ScoreText(scorer, c.text);
    EXPECT_EQ(Names(t), c.categories) << c.text;
    EXPECT_EQ(t.urgency, c.urgency) << c.text;
    EXPECT_EQ(t.complaint, c.complaint) << c.text;
  }
}

TEST(ScorerTest, CategoriesOnWordBoundariesCaseAndAccentInsensitive) {
  const auto scorer = MakeScorer();
  const std::vector<Case> cases = {
      {"The site is DOWN again", {"outage"}, 45, true},
      {"I will download the app", {}, 0, false},          // "down" inside a word
      {"it's not   working, refund please", {"outage", "billing"}, 75, true},  // spaces fold
      {"Charged twice", {"billing"}, 30, true},
      {"charged twiceover", {}, 0, false},                // a phrase ends on a boundary
      {"I cant pay my bill", {"billing"}, 30, true},       // apostrophe optional
      {"I can\xE2\x80\x99t pay", {"billing"}, 30, true},   // typographic apostrophe
      {"the app crashed twice", {"outage"}, 45, true},     // prefix term crash*
      {"R\xC3\x89" "FUND please", {"billing"}, 30, true},   // accents fold: RÉFUND
      {"down down down outage", {"outage"}, 45, true},     // a category counts once
      {"what is the pricing? demo?", {"sales"}, 0, false},
      {"", {}, 0, false},
  };
  ExpectCases(*scorer, cases);
}

TEST(ScorerTest, SignalsNegationAndSarcasm) {
  const auto scorer = MakeScorer();
  const std::vector<Case> cases = {
      {"thanks, love it", {"praise"}, 0, false},
      {"LOVE IT SO MUCH THANKS!!!", {"praise"}, 0, false},      // shouting praise is not urgent
      {"I am not happy with this", {}, 20, true},                // negated praise
      {"never great service here", {}, 20, true},
      {"great, another outage", {"outage"}, 55, true},           // sarcasm: 45 + 10, no praise
      {"THE SITE IS DOWN AGAIN TODAY", {"outage"}, 55, true},    // shouting +10
      {"site down!! why??", {"outage"}, 55, true},               // two runs, +5 each
      {"ok \xF0\x9F\x98\xA1", {}, 15, true},                     // angry emoji alone
      {"down!!! !!! ??? !!", {"outage"}, 55, true},              // runs count twice at most
  };
  ExpectCases(*scorer, cases);
}

TEST(ScorerTest, ReasonsNameTermsAndSignals) {
  const auto scorer = MakeScorer();
  const Triage t = ScoreText(*scorer, "great, another outage!! site down");
  ASSERT_GE(t.reasons.size(), 4u);
  EXPECT_EQ(t.reasons[0], "category outage (+45) matched 'outage', 'down'");
  EXPECT_EQ(t.reasons[1], "praise beside a complaint read as sarcasm (+10)");
  EXPECT_EQ(t.reasons[2], "runs of !/? (+5)");
  EXPECT_EQ(t.reasons[3], "complaint: the author reports a problem");
}

TEST(ScorerTest, ReachIsLogScaleCappedAndKnowsWhenUnknown) {
  const auto scorer = MakeScorer();
  EXPECT_FALSE(ScoreText(*scorer, "hi").reach_known);
  EXPECT_EQ(ScoreText(*scorer, "hi").reach, 0);
  EXPECT_EQ(ScoreText(*scorer, "hi", 0).reach, 0);
  EXPECT_TRUE(ScoreText(*scorer, "hi", 0).reach_known);
  struct Band {
    int64_t followers;
    int reach;
  };
  // 80 * log10(1 + f) / log10(1 + 10M), then rounded.
  for (const Band& b : std::vector<Band>{{9, 11}, {99, 23}, {999, 34}, {9'999, 46}, {99'999, 57},
                                         {999'999, 69}, {10'000'000, 80}, {900'000'000, 80}}) {
    EXPECT_EQ(ScoreText(*scorer, "hi", b.followers).reach, b.reach) << b.followers;
  }
  EXPECT_EQ(ScoreText(*scorer, "hi", 10'000'000, true).reach, 100);
  EXPECT_EQ(ScoreText(*scorer, "hi", 10'000'000, true, "blue").reach, 88);
  EXPECT_EQ(ScoreText(*scorer, "hi", std::nullopt, true, "government").reach, 20);
  int previous = 0;
  for (int64_t f = 1; f < 100'000'000; f *= 3) {
    const int reach = ScoreText(*scorer, "hi", f).reach;
    EXPECT_GE(reach, previous) << f;
    previous = reach;
  }
}

TEST(ScorerTest, AssumedReachAndKnownAuthorsAreExplained) {
  const auto scorer = MakeScorer();
  Message m;
  m.author.assumed_reach = 10;
  m.author.known_as = "press";
  Triage t;
  scorer->Score(m, kNow, &t);
  EXPECT_EQ(t.reach, 10);
  EXPECT_FALSE(t.reach_known);
  EXPECT_NE(std::find(t.reasons.begin(), t.reasons.end(), "known author: press"), t.reasons.end());
}

TEST(ScorerTest, ReachAloneNeverMakesAMessageUrgent) {
  const auto scorer = MakeScorer();
  const Triage t = ScoreText(*scorer, "nice weather", 500'000'000, true);
  EXPECT_EQ(t.priority, 25);
  EXPECT_EQ(t.level, Level::kNormal);
}

TEST(ScorerTest, LevelsAndSlaFollowPriority) {
  const auto scorer = MakeScorer();
  struct LevelCase {
    std::string text;
    std::optional<int64_t> followers;
    bool verified;
    Level level;
    absl::Duration sla;
  };
  const std::vector<LevelCase> cases = {
      {"down and not working, refund", 10'000'000, true, Level::kUrgent, absl::Minutes(15)},  // 81
      {"refund", 10'000'000, true, Level::kHigh, absl::Hours(1)},     // 22.5 + 25 = 48
      {"refund", std::nullopt, false, Level::kNormal, absl::Hours(4)},  // 22.5 -> 23
      {"hello", std::nullopt, false, Level::kLow, absl::Hours(24)},
  };
  for (const LevelCase& c : cases) {
    const Triage t = ScoreText(*scorer, c.text, c.followers, c.verified);
    EXPECT_EQ(t.level, c.level) << c.text << " priority " << t.priority;
    EXPECT_EQ(t.sla_deadline, kNow + c.sla) << c.text;
  }
}

TEST(ScorerTest, BadOptionsAndTermsAreRefused) {
  ScorerOptions options;
  EXPECT_TRUE(Scorer::Create(options).ok());
  options.reach_weight = 0.5;
  EXPECT_FALSE(Scorer::Create(options).ok());
  options = ScorerOptions();
  options.levels[1].min_priority = options.levels[0].min_priority;
  EXPECT_FALSE(Scorer::Create(options).ok());
  options = ScorerOptions();
  options.levels[3].min_priority = 5;
  EXPECT_FALSE(Scorer::Create(options).ok());
  options = ScorerOptions();
  options.categories = {{"x", 10, {"   "}}};
  EXPECT_FALSE(Scorer::Create(options).ok());
}

TEST(TextTest, FoldingAndSignals) {
  std::string folded;
  FoldForMatching("Remboursement  REFUS\xC3\x89,\tc\xE2\x80\x99" "est NUL \xC3\x9F \xF0\x9F\x98\xA1", &folded);
  EXPECT_EQ(folded, "remboursement refuse, cest nul \xC3\x9F \xF0\x9F\x98\xA1");
  EXPECT_EQ(Matcher::Expression("Can\xE2\x80\x99t  log-in"), "\\bcant\\x20log\\x2din\\b");
  EXPECT_EQ(Matcher::Expression("refund*"), "\\brefund");
  FoldForMatching("\xC5\x81\xC3\xB3" "d\xC5\xBA \xC3\x85" "ngstr\xC3\xB6m", &folded);
  EXPECT_EQ(folded, "lodz angstrom");
  EXPECT_TRUE(ReadSignals("WHY IS THIS STILL BROKEN").shouting);
  EXPECT_FALSE(ReadSignals("I live in the USA and NYC").shouting);
  EXPECT_FALSE(ReadSignals("OK FINE").shouting);  // too short to be shouting
  EXPECT_EQ(ReadSignals("what?! no!! really??").exclamation_runs, 2);
  EXPECT_EQ(ReadSignals("what?! no!! really??").question_runs, 1);
  EXPECT_EQ(ReadSignals("\xF0\x9F\x98\xA0 \xF0\x9F\xA4\xAC \xF0\x9F\x98\x80").angry_emoji, 2);
}

}  // namespace
}  // namespace triage::router
