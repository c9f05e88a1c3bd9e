#include "router/text_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "router/model_eval.h"

namespace triage::router {
namespace {

std::vector<std::string> Tokens(absl::string_view text) {
  ModelTokens t;
  TokenizeForModel(text, &t);
  return t.tokens;
}

TEST(TokenizeForModelTest, FoldsAndNormalisesWhatVariesBetweenTexts) {
  EXPECT_EQ(Tokens("@Acme Can’t LOGIN!!! see https://x.co/a?b=1 for 3 hours :( 😡"),
            (std::vector<std::string>{"@user", "cant", "login", "!!", "see", "<url>", "for", "0", "hours", ":(",
                                      "\xF0\x9F\x98\xA1"}));
  EXPECT_EQ(Tokens("REMBOURSÉ? $50 &amp; www.acme.example… :-) #fail"),
            (std::vector<std::string>{"rembourse", "?", "$", "0", "<url>", ":)", "fail"}));
  EXPECT_EQ(Tokens("why?! 2nd time...really"), (std::vector<std::string>{"why", "?!", "2nd", "time", "...", "really"}));
  EXPECT_TRUE(Tokens("").empty());
  EXPECT_TRUE(Tokens("  ,.;  ").empty());
  ModelTokens t;
  TokenizeForModel("@a fix it !", &t);
  EXPECT_EQ(t.is_word, (std::vector<bool>{false, true, true, false}));
}

TEST(TokenizeForModelTest, BrokenUtf8IsSkippedNotFatal) {
  const std::string text = std::string("ok \xC3") + " \xF0\x9F" + " fine";
  EXPECT_EQ(Tokens(text), (std::vector<std::string>{"ok", "fine"}));
}

// A small problem a linear model must learn: complaints mention failures, others thanks.
std::vector<LabelledText> Examples() {
  const char* complaints[] = {"my order never arrived", "the app keeps crashing", "still no refund after weeks",
                              "charged twice and nobody answers", "the screen is broken again", "why is my bill so high",
                              "delivery is late again", "cannot log in since yesterday", "worst support ever",
                              "the package arrived damaged", "my card was declined for no reason", "the wifi keeps dropping"};
  const char* others[] = {"thanks for the quick help", "love the new update", "what time do you open",
                          "do you ship to canada", "great service today", "happy birthday to the team",
                          "is the blue one in stock", "the new menu looks amazing", "can I change my address",
                          "thank you so much", "see you next week", "best coffee in town"};
  std::vector<LabelledText> out;
  for (const char* c : complaints) out.push_back({c, 1});
  for (const char* o : others) out.push_back({o, 0});
  return out;
}

ModelInfo ComplaintInfo() {
  ModelInfo info;
  info.label = ModelLabel::kComplaint;
  info.classes = {"no", "yes"};
  info.name = "test";
  return info;
}

TEST(TextModelTest, LearnsAndGeneralisesToUnseenPhrasings) {
  auto model = TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->Predict("my refund never arrived, still waiting").best, 1);
  EXPECT_EQ((*model)->Predict("thanks, love it").best, 0);
  const ModelInfo& info = (*model)->info();
  EXPECT_EQ(info.examples, 24);
  EXPECT_EQ(info.class_counts, (std::vector<int64_t>{12, 12}));
  EXPECT_GT(info.threshold, 0.0);
  EXPECT_LT(info.threshold, 1.0);
  EXPECT_GT((*model)->stored_buckets(), 100u);
}

TEST(TextModelTest, TrainingIsDeterministicForASeed) {
  const std::string a = (*TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{}))->Serialize();
  const std::string b = (*TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{}))->Serialize();
  EXPECT_EQ(a, b);
}

TEST(TextModelTest, SerializedModelPredictsTheSame) {
  auto model = TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{});
  ASSERT_TRUE(model.ok());
  auto parsed = TextModel::Parse((*model)->Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)->info().name, "test");
  EXPECT_EQ((*parsed)->info().threshold, (*model)->info().threshold);
  for (const char* text : {"my app is broken", "thanks a lot", "", "!!!"}) {
    EXPECT_DOUBLE_EQ((*parsed)->Predict(text).probability[1], (*model)->Predict(text).probability[1]) << text;
  }
}

TEST(TextModelTest, ParseRefusesWhatIsNotAWholeModel) {
  const std::string bytes = (*TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{}))->Serialize();
  EXPECT_FALSE(TextModel::Parse("").ok());
  EXPECT_FALSE(TextModel::Parse("not a model at all, just text").ok());
  EXPECT_FALSE(TextModel::Parse(bytes.substr(0, bytes.size() / 2)).ok());
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  const auto damaged = TextModel::Parse(flipped);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("checksum"), std::string::npos) << damaged.status();
}

TEST(TextModelTest, ExplanationSumsExactlyToTheLogOdds) {
  auto model = TextModel::Train(Examples(), ComplaintInfo(), TrainOptions{});
  ASSERT_TRUE(model.ok());
  for (const char* text : {"still no refund, the app keeps crashing!!", "thanks for the help", "why why why"}) {
    for (size_t limit : {size_t{2}, size_t{50}}) {
      const Explanation e = (*model)->Explain(text, limit);
      double sum = e.bias;
      for (const Contribution& c : e.terms) sum += c.weight;
      const double p = e.prediction.probability[1];
      EXPECT_NEAR(sum, e.score, 1e-9) << text;
      EXPECT_NEAR(e.score, std::log(p / (1 - p)), 1e-9) << text;
      EXPECT_LE(e.terms.size(), limit + 1);
    }
  }
  // The words that push towards a complaint come out positive.
  const Explanation e = (*model)->Explain("the app keeps crashing", 10);
  ASSERT_FALSE(e.terms.empty());
  double crashing = 0;
  for (const Contribution& c : e.terms) {
    if (c.phrase == "crashing" || c.phrase == "keeps crashing") crashing += c.weight;
  }
  EXPECT_GT(crashing, 0);
}

TEST(TextModelTest, MultiClassModelsExplainTheMarginOverTheRunnerUp) {
  std::vector<LabelledText> examples;
  const char* billing[] = {"charged twice", "refund my money", "wrong invoice", "billing error", "card charged again"};
  const char* tech[] = {"app crashes", "cannot log in", "screen is black", "sync broken", "button does nothing"};
  const char* sales[] = {"price for 50 seats", "book a demo", "enterprise plan cost", "discount for schools", "buy in bulk"};
  for (const char* t : billing) examples.push_back({t, 0});
  for (const char* t : tech) examples.push_back({t, 1});
  for (const char* t : sales) examples.push_back({t, 2});
  ModelInfo info;
  info.label = ModelLabel::kTeam;
  info.classes = {"billing", "tech", "sales"};
  TrainOptions options;
  options.inner_folds = 2;
  auto model = TextModel::Train(examples, info, options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE((*model)->binary());
  EXPECT_EQ((*model)->Predict("I was charged twice").best, 0);
  EXPECT_EQ((*model)->Predict("the app crashes").best, 1);
  const Explanation e = (*model)->Explain("refund, the card was charged", 3);
  const std::vector<double>& p = e.prediction.probability;
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-9);
  double runner_up = 0;
  for (size_t k = 0; k < p.size(); ++k) {
    if (static_cast<int>(k) != e.prediction.best) runner_up = std::max(runner_up, p[k]);
  }
  double sum = e.bias;
  for (const Contribution& c : e.terms) sum += c.weight;
  EXPECT_NEAR(sum, std::log(p[e.prediction.best] / runner_up), 1e-9);
  auto parsed = TextModel::Parse((*model)->Serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)->info().classes, info.classes);
  EXPECT_EQ((*parsed)->info().label, ModelLabel::kTeam);
}

TEST(TextModelTest, TrainingRefusesAClassWithoutExamples) {
  ModelInfo info = ComplaintInfo();
  std::vector<LabelledText> only_yes = {{"broken", 1}, {"late", 1}};
  const auto model = TextModel::Train(only_yes, info, TrainOptions{});
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("'no'"), std::string::npos) << model.status();
  info.classes = {"only"};
  EXPECT_FALSE(TextModel::Train(only_yes, info, TrainOptions{}).ok());
}

TEST(ModelEvalTest, RocAucCountsPairsAndTies) {
  EXPECT_DOUBLE_EQ(RocAuc({{0.1, 0}, {0.4, 0}, {0.35, 1}, {0.8, 1}}), 0.75);
  EXPECT_DOUBLE_EQ(RocAuc({{0.1, 0}, {0.9, 1}}), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc({{0.9, 0}, {0.1, 1}}), 0.0);
  EXPECT_DOUBLE_EQ(RocAuc({{0.5, 0}, {0.5, 1}, {0.5, 1}, {0.5, 0}}), 0.5);
  EXPECT_DOUBLE_EQ(RocAuc({{0.5, 1}}), 0.5);  // one class only
}

TEST(ModelEvalTest, FoldsAreStratifiedAndSeeded) {
  std::vector<int> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(i < 30 ? 1 : 0);
  const std::vector<int> folds = StratifiedFolds(labels, 10, 7);
  for (int f = 0; f < 10; ++f) {
    int positives = 0, size = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (folds[i] != f) continue;
      ++size;
      positives += labels[i];
    }
    EXPECT_EQ(size, 10) << f;
    EXPECT_EQ(positives, 3) << f;
  }
  EXPECT_EQ(folds, StratifiedFolds(labels, 10, 7));
  EXPECT_NE(folds, StratifiedFolds(labels, 10, 8));
}

TEST(ModelEvalTest, ReportsPerClassFiguresAndTheConfusionMatrix) {
  Evaluation e({"no", "yes"});
  // 3 true positives, 1 false negative, 1 false positive, 5 true negatives.
  for (int i = 0; i < 3; ++i) e.Add(1, 1, {0.2, 0.8});
  e.Add(1, 0, {0.6, 0.4});
  e.Add(0, 1, {0.3, 0.7});
  for (int i = 0; i < 5; ++i) e.Add(0, 0, {0.9, 0.1});
  const Evaluation::Result r = e.Compute();
  EXPECT_EQ(r.total, 10);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.8);
  EXPECT_DOUBLE_EQ(r.precision[1], 0.75);
  EXPECT_DOUBLE_EQ(r.recall[1], 0.75);
  EXPECT_DOUBLE_EQ(r.precision[0], 5.0 / 6);
  EXPECT_NEAR(r.macro_f1, (0.75 + 2 * (5.0 / 6) * (5.0 / 6) / (10.0 / 6)) / 2, 1e-12);
  EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{5, 1}, {1, 3}}));
  EXPECT_NEAR(r.auc, 23.0 / 24, 1e-12);
  EXPECT_NE(FormatEvaluation(r).find("macro-F1 "), std::string::npos);
  EXPECT_NE(EvaluationJson(r).find("\"confusion\":[[5,1],[1,3]]"), std::string::npos) << EvaluationJson(r);
}

}  // namespace
}  // namespace triage::router
