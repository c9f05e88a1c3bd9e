// Trained models, the sentiment lexicon, complaint evidence and helpdesk feedback in the
// config: what loads, and what is refused by name.
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "config/config.h"
#include "tests/test_util.h"

namespace triage::config {
using triage::testing::TempDir;
namespace {

constexpr char kBase[] = R"(sources:
  generic: {type: generic, secret: s3cret}
scoring:
  complaint_threshold: 20
  signals: {negative_sentiment: 30, positive_sentiment: 5}
  categories:
    cues: {weight: 6, per_term: true, max: 12, terms: [still, why]}
    outage: {weight: 45, terms: [down]}
SCORING
teams:
  support: {destinations: [zd]}
  billing: {destinations: [zd]}
routing:
  default_team: support
ROUTING
destinations:
  zd: {type: zendesk, url: "https://acme.zendesk.com", email: a@b.c, api_token: t, group_ids: {support: 1, billing: 2}}
  fd: {type: freshdesk, url: "https://acme.freshdesk.com", api_key: k}
FEEDBACK
)";

std::string Yaml(const std::string& scoring, const std::string& routing = "", const std::string& feedback = "") {
  return absl::StrReplaceAll(kBase, {{"SCORING", scoring}, {"ROUTING", routing}, {"FEEDBACK", feedback}});
}

std::string Errors(const std::string& yaml) {
  const auto config = LoadConfigString(yaml, "t.yaml");
  return config.ok() ? "" : std::string(config.status().message());
}

// Writes a small trained model of `label` into `dir`; returns its path.
std::string WriteModel(const std::string& dir, router::ModelLabel label, std::vector<std::string> classes) {
  std::vector<router::LabelledText> examples;
  for (int i = 0; i < 8; ++i) {
    examples.push_back({absl::StrCat("broken thing ", i), 0});
    examples.push_back({absl::StrCat("lovely thing ", i), 1});
  }
  router::ModelInfo info;
  info.label = label;
  info.classes = std::move(classes);
  router::TrainOptions options;
  options.inner_folds = 2;
  const auto model = router::TextModel::Train(examples, info, options);
  EXPECT_TRUE(model.ok()) << model.status();
  const std::string path = absl::StrCat(dir, "/", router::ModelLabelName(label), ".model");
  std::ofstream(path, std::ios::binary) << (*model)->Serialize();
  return path;
}

TEST(ModelsConfigTest, EvidenceSettingsAndTheBuiltInSentimentLexiconLoad) {
  const auto config = LoadConfigString(Yaml(""), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->scoring.complaint_threshold, 20);
  EXPECT_EQ(config->scoring.signals.negative_sentiment, 30);
  EXPECT_EQ(config->scoring.signals.positive_sentiment, 5);
  ASSERT_EQ(config->scoring.categories.size(), 2u);
  EXPECT_TRUE(config->scoring.categories[0].per_term);
  EXPECT_EQ(config->scoring.categories[0].max, 12);
  ASSERT_NE(config->scoring.sentiment, nullptr);
  EXPECT_GT(config->scoring.sentiment->size(), 7000u);  // VADER's list, embedded
  EXPECT_FALSE(config->scoring.model.has_value());
  EXPECT_NE(Errors(Yaml("").replace(Yaml("").find("max: 12"), 7, "max: 101")).find("scoring.categories.cues.max"),
            std::string::npos);
  EXPECT_NE(Errors(absl::StrReplaceAll(Yaml(""), {{"per_term: true, ", ""}})).find("max applies only with per_term"),
            std::string::npos);
}

TEST(ModelsConfigTest, ModelsLoadAsFilesOrBlocksAndWrongOnesAreRefusedByName) {
  TempDir dir;
  const std::string complaint = WriteModel(dir.path(), router::ModelLabel::kComplaint, {"no", "yes"});
  const std::string team = WriteModel(dir.path(), router::ModelLabel::kTeam, {"billing", "support"});

  auto config = LoadConfigString(Yaml(absl::StrCat("  model: ", complaint), absl::StrCat("  model: ", team)), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->scoring.model.has_value());
  EXPECT_EQ(config->scoring.model->name, "complaint.model");
  EXPECT_EQ(config->scoring.model->points, 60);
  ASSERT_TRUE(config->routing.model.has_value());
  EXPECT_EQ(config->routing.model->model->info().classes, (std::vector<std::string>{"billing", "support"}));

  config = LoadConfigString(Yaml(absl::StrCat("  model: {path: ", complaint, ", threshold: 0.7, points: 40}")), "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->scoring.model->threshold, 0.7);
  EXPECT_EQ(config->scoring.model->points, 40);

  // Missing, damaged, or trained for another label: refused with the key and the file.
  std::string e = Errors(Yaml(absl::StrCat("  model: ", dir.path(), "/none.model")));
  EXPECT_NE(e.find("scoring.model: "), std::string::npos) << e;
  EXPECT_NE(e.find("none.model: cannot open the model file"), std::string::npos) << e;
  std::ofstream(dir.path() + "/junk.model") << "junk";
  e = Errors(Yaml(absl::StrCat("  model: ", dir.path(), "/junk.model")));
  EXPECT_NE(e.find("junk.model: not a triaged model"), std::string::npos) << e;
  e = Errors(Yaml(absl::StrCat("  model: ", team)));
  EXPECT_NE(e.find("a model trained for --label team, not for complaint"), std::string::npos) << e;
  e = Errors(Yaml(absl::StrCat("  model: {path: ", complaint, ", threshold: 1.5}")));
  EXPECT_NE(e.find("scoring.model.threshold"), std::string::npos) << e;

  // A team model proposing a team the config does not have.
  const std::string other = WriteModel(dir.path(), router::ModelLabel::kTeam, {"billing", "sales"});
  e = Errors(Yaml("", absl::StrCat("  model: ", other)));
  EXPECT_NE(e.find("routing.model: the model proposes team 'sales'"), std::string::npos) << e;
}

TEST(ModelsConfigTest, RulesUsingTheTeamModelNeedOne) {
  const std::string rules = R"(  rules:
    - name: learned
      when: {min_model_confidence: 0.8}
      model_team: true)";
  std::string e = Errors(Yaml("", rules));
  EXPECT_NE(e.find("uses the team model, but routing.model is not set"), std::string::npos) << e;
  e = Errors(Yaml("", R"(  rules:
    - name: both
      team: billing
      model_team: true)"));
  EXPECT_NE(e.find("give team or model_team, not both"), std::string::npos) << e;
  e = Errors(Yaml("", R"(  rules:
    - name: sure
      when: {min_model_confidence: 2}
      team: billing)"));
  EXPECT_NE(e.find("min_model_confidence: must be between 0 and 1"), std::string::npos) << e;
}

TEST(ModelsConfigTest, FeedbackNeedsADestinationOfItsTypeAndASecret) {
  auto config = LoadConfigString(Yaml("", "", R"(feedback:
  zendesk-agents: {type: zendesk, destination: zd, secret: s, complaint_tags: [angry], max_clock_skew: 1m}
  freshdesk-agents: {type: freshdesk, destination: fd, secret: t, token_header: X-Token})"),
                                 "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->feedback.size(), 2u);
  EXPECT_EQ(config->feedback[0].complaint_tags, (std::vector<std::string>{"angry"}));
  EXPECT_EQ(config->feedback[0].not_complaint_tags, (std::vector<std::string>{"not_complaint"}));
  EXPECT_EQ(config->feedback[0].max_clock_skew, absl::Minutes(1));
  EXPECT_EQ(config->feedback[1].token_header, "X-Token");
  std::string e = Errors(Yaml("", "", "feedback:\n  a: {type: zendesk, destination: fd, secret: s}"));
  EXPECT_NE(e.find("destination 'fd' is not a zendesk destination"), std::string::npos) << e;
  e = Errors(Yaml("", "", "feedback:\n  a: {type: zendesk, destination: nope, secret: s}"));
  EXPECT_NE(e.find("unknown destination 'nope'"), std::string::npos) << e;
  e = Errors(Yaml("", "", "feedback:\n  a: {type: zendesk, destination: zd}"));
  EXPECT_NE(e.find("feedback.a.secret: is required"), std::string::npos) << e;
  e = Errors(Yaml("", "", "feedback:\n  a: {type: slack, destination: zd, secret: s}"));
  EXPECT_NE(e.find("unknown feedback type"), std::string::npos) << e;
  e = Errors(Yaml("", "", "feedback:\n  a b: {type: zendesk, destination: zd, secret: s}"));
  EXPECT_NE(e.find("feedback names use letters"), std::string::npos) << e;
}

}  // namespace
}  // namespace triage::config
