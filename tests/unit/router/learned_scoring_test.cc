// What the scorer does beyond single categories: weak cues counted per term up to a cap, a
// complaint threshold, the sentiment signal, and a trained complaint model deciding.
#include <gtest/gtest.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "router/router.h"
#include "router/scorer.h"
#include "router/sentiment.h"

namespace triage::router {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::shared_ptr<const SentimentLexicon> Lexicon() {
  auto lexicon = SentimentLexicon::Parse("# test valences\ngood\t1.9\nbad\t-2.5\nbroken\t-2.1\nlove\t3.2\n:(\t-1.9\n");
  EXPECT_TRUE(lexicon.ok()) << lexicon.status();
  return *lexicon;
}

SentimentLexicon::Result Sentiment(absl::string_view text) {
  ModelTokens tokens;
  TokenizeForModel(text, &tokens);
  return Lexicon()->Score(tokens);
}

TEST(SentimentLexiconTest, ReadsNegationIntensifiersAndBut) {
  EXPECT_GT(Sentiment("good").compound, 0.3);
  EXPECT_LT(Sentiment("bad").compound, -0.3);
  EXPECT_EQ(Sentiment("nothing here").compound, 0);
  const auto negated = Sentiment("not good");
  EXPECT_LT(negated.compound, 0);
  ASSERT_EQ(negated.terms.size(), 1u);
  EXPECT_EQ(negated.terms[0].phrase, "not good");
  EXPECT_LT(Sentiment("so bad").compound, Sentiment("bad").compound);
  EXPECT_GT(Sentiment("kinda bad").compound, Sentiment("bad").compound);
  // After "but" counts more: good app but broken -> negative overall.
  EXPECT_LT(Sentiment("good app but broken").compound, 0);
  EXPECT_LT(Sentiment("what a day :(").compound, 0);
}

TEST(SentimentLexiconTest, RefusesAMalformedLineByNumber) {
  const auto bad = SentimentLexicon::Parse("good\t1.9\nbad -2.5\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status();
  EXPECT_FALSE(SentimentLexicon::Parse("huge\t9\n").ok());
}

ScorerOptions Options() {
  ScorerOptions o;
  CategoryOptions cues{"cues", 6, {"my", "still", "why", "again"}};
  cues.per_term = true;
  cues.max = 12;
  o.categories = {{"outage", 45, {"down"}}, {"problem", 15, {"issue"}}, cues, {"praise", -10, {"thanks"}}};
  o.sentiment = Lexicon();
  return o;
}

Triage Score(const Scorer& scorer, const std::string& text) {
  Message m;
  m.text = text;
  Triage t;
  scorer.Score(m, kNow, &t);
  return t;
}

TEST(ScorerEvidenceTest, CuesCountPerTermUpToTheirCapAndNeedTheThreshold) {
  const auto scorer = *Scorer::Create(Options());
  Triage t = Score(*scorer, "my order");
  EXPECT_FALSE(t.complaint);
  EXPECT_EQ(t.urgency, 6);
  t = Score(*scorer, "why is my order still late again");  // four cues: 24, capped at 12
  ASSERT_EQ(t.categories.size(), 1u);
  EXPECT_EQ(t.categories[0].weight, 12);
  EXPECT_EQ(t.urgency, 12);
  EXPECT_FALSE(t.complaint);  // 12 < 15
  t = Score(*scorer, "my issue");
  EXPECT_TRUE(t.complaint);   // 6 + 15
  EXPECT_EQ(t.urgency, 21);
  ScorerOptions lower = Options();
  lower.complaint_threshold = 10;
  EXPECT_TRUE(Score(**Scorer::Create(lower), "why is my order still late").complaint);
}

TEST(ScorerEvidenceTest, SentimentShiftsUrgencyAndEvidenceBothWays) {
  const auto scorer = *Scorer::Create(Options());
  Triage t = Score(*scorer, "so bad, broken");
  EXPECT_TRUE(t.complaint);
  EXPECT_GT(t.urgency, 15);
  bool reason = false;
  for (const std::string& r : t.reasons) reason |= r.find("negative sentiment") != std::string::npos;
  EXPECT_TRUE(reason);
  // Praise and a positive text: below zero is clamped, and no complaint.
  t = Score(*scorer, "thanks, love it, so good");
  EXPECT_FALSE(t.complaint);
  EXPECT_EQ(t.urgency, 0);
  ScorerOptions off = Options();
  off.signals.negative_sentiment = 0;
  off.signals.positive_sentiment = 0;
  EXPECT_FALSE(Score(**Scorer::Create(off), "so bad, broken").complaint);
}

std::shared_ptr<const TextModel> ComplaintModel() {
  std::vector<LabelledText> examples;
  for (const char* t : {"nothing works", "refund me now", "order never came", "it broke", "still waiting",
                        "charged twice", "awful service", "cannot log in"}) {
    examples.push_back({t, 1});
  }
  for (const char* t : {"thank you", "see you soon", "love the shop", "what are your hours", "nice job",
                        "happy to help", "do you sell gifts", "great coffee"}) {
    examples.push_back({t, 0});
  }
  ModelInfo info;
  info.classes = {"no", "yes"};
  TrainOptions options;
  options.inner_folds = 2;
  return *TextModel::Train(examples, info, options);
}

TEST(ScorerModelTest, TheModelDecidesAndAddsItsPointsCategoriesKeepTheirWeight) {
  ScorerOptions options = Options();
  options.model = ScoringModel{ComplaintModel(), "complaint.model", std::nullopt, 60};
  const auto scorer = *Scorer::Create(options);
  Triage t = Score(*scorer, "order never came, refund me");
  ASSERT_TRUE(t.model_complaint_probability.has_value());
  const double p = *t.model_complaint_probability;
  EXPECT_TRUE(t.complaint);
  EXPECT_EQ(t.urgency, std::lround(60 * p));  // no category, cue or sentiment word in it
  bool named = false, words = false;
  for (const std::string& r : t.reasons) {
    named |= r.find("model complaint.model: complaint probability") != std::string::npos;
    words |= r.find("model complaint.model log-odds") != std::string::npos && r.find("'refund'") != std::string::npos;
  }
  EXPECT_TRUE(named);
  EXPECT_TRUE(words);
  // A calm message with a severe category stays urgent whatever the model says.
  t = Score(*scorer, "the server is down");
  EXPECT_GE(t.urgency, 45);
  // A threshold of 0.99 turns the same text into no complaint; the points stay.
  options.model->threshold = 0.99;
  t = Score(**Scorer::Create(options), "order never came, refund me");
  EXPECT_FALSE(t.complaint);
  EXPECT_EQ(t.urgency, std::lround(60 * p));
}

TEST(ScorerModelTest, OnlyAComplaintModelWithSaneSettingsIsAccepted) {
  ScorerOptions options = Options();
  options.model = ScoringModel{nullptr, "x", std::nullopt, 60};
  EXPECT_FALSE(Scorer::Create(options).ok());
  options.model = ScoringModel{ComplaintModel(), "x", 1.5, 60};
  EXPECT_FALSE(Scorer::Create(options).ok());
  options.model = ScoringModel{ComplaintModel(), "x", std::nullopt, 101};
  EXPECT_FALSE(Scorer::Create(options).ok());
}

std::shared_ptr<const TextModel> TeamModel() {
  std::vector<LabelledText> examples;
  for (const char* t : {"charged twice", "refund please", "wrong invoice", "billing error"}) examples.push_back({t, 0});
  for (const char* t : {"app crashes", "cannot log in", "screen black", "sync broken"}) examples.push_back({t, 1});
  ModelInfo info;
  info.label = ModelLabel::kTeam;
  info.classes = {"billing", "support"};
  TrainOptions options;
  options.inner_folds = 2;
  return *TextModel::Train(examples, info, options);
}

TEST(RouterModelTest, RulesTakeTheModelsTeamAboveAConfidence) {
  RouterOptions options;
  options.teams = {"support", "billing"};
  options.default_team = "support";
  RuleOptions learned;
  learned.name = "learned";
  learned.min_model_confidence = 0.5;
  learned.model_team = true;
  options.rules = {learned};
  options.model = RoutingModel{TeamModel(), "team.model"};
  auto triager = Triager::Create(Options(), options);
  ASSERT_TRUE(triager.ok()) << triager.status();
  Message m;
  m.text = "I was charged twice, refund please";
  RoutedMessage r = (*triager)->Triage(m, kNow);
  EXPECT_EQ(r.triage.model_team, "billing");
  EXPECT_EQ(r.triage.team, "billing");
  EXPECT_EQ(r.triage.rule, "learned");
  // Above what the model can reach: the rule does not match, the default applies.
  options.rules[0].min_model_confidence = 0.9999;
  triager = Triager::Create(Options(), options);
  ASSERT_TRUE(triager.ok());
  r = (*triager)->Triage(m, kNow);
  EXPECT_EQ(r.triage.team, "support");
  EXPECT_EQ(r.triage.model_team, "billing");
}

// A follow-up in a conversation support owns: the model's team does not take it, and the reason
// says so rather than claiming the rule took it.
TEST(RouterModelTest, TheModelsTeamYieldsToTheConversationsOwner) {
  RouterOptions options;
  options.teams = {"support", "billing"};
  options.default_team = "support";
  RuleOptions learned;
  learned.name = "learned";
  learned.model_team = true;
  options.rules = {learned};
  options.model = RoutingModel{TeamModel(), "team.model"};
  auto triager = Triager::Create(Options(), options);
  ASSERT_TRUE(triager.ok()) << triager.status();
  Message m;
  m.text = "I was charged twice, refund please";
  m.conversation_id = "dm:7";
  const ConversationOwner owner{"support", Level::kUrgent};
  const RoutedMessage r = (*triager)->Triage(m, kNow, &owner);
  EXPECT_EQ(r.triage.team, "support");
  EXPECT_EQ(r.triage.rule, "conversation");
  bool yielded = false;
  for (const std::string& reason : r.triage.reasons) {
    EXPECT_FALSE(absl::StartsWith(reason, "rule learned took")) << reason;
    yielded |= absl::StartsWith(reason, "rule learned would take the model's team billing (probability ") &&
               absl::EndsWith(reason, "), but the conversation stays with its owner");
  }
  EXPECT_TRUE(yielded) << absl::StrJoin(r.triage.reasons, "\n");
}

TEST(RouterModelTest, ModelRulesNeedAModelWhoseTeamsExist) {
  RouterOptions options;
  options.teams = {"support"};
  options.default_team = "support";
  RuleOptions learned;
  learned.name = "learned";
  learned.model_team = true;
  options.rules = {learned};
  EXPECT_FALSE(Router::Create(options).ok());  // no model
  options.model = RoutingModel{TeamModel(), "team.model"};
  const auto unknown = Router::Create(options);  // proposes billing, not a team here
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'billing'"), std::string::npos) << unknown.status();
}

}  // namespace
}  // namespace triage::router
