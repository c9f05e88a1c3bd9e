#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/matcher.h"
#include "router/message.h"
#include "router/sentiment.h"
#include "router/text_model.h"

namespace triage::router {

// What a category says about its author: a problem (complaint), satisfaction (praise), a
// problem solved (resolution: "thanks for fixing the outage" is not a complaint), or neither
// (sales intent, press). Praise beside complaint signals reads as sarcasm; negated praise or
// resolution ("not happy", "still not fixed") is a complaint.
enum class CategoryRole { kComplaint, kPraise, kResolution, kNeutral };

// A category of concern ("outage", "billing", ...): any of its terms found in the text adds
// `weight` to the urgency, once per category. Term syntax: see Matcher.
struct CategoryOptions {
  std::string name;
  int weight = 0;  // -100..100
  std::vector<std::string> terms;
  // Weak cues ("still", "why", "my"): each distinct term matched adds `weight`, and the
  // category adds at most `max` in all. Otherwise the category adds its weight once.
  bool per_term = false;
  int max = 100;
  std::optional<CategoryRole> role;  // default: complaint if weight > 0, praise if < 0

  CategoryRole effective_role() const {
    return role.value_or(weight > 0   ? CategoryRole::kComplaint
                         : weight < 0 ? CategoryRole::kPraise
                                      : CategoryRole::kNeutral);
  }
};

// Urgency points for signals in how a text is written. Shouting and runs of '!'/'?' count
// only in a complaint ("LOVE IT!!!" is not urgent).
struct SignalOptions {
  int shouting = 10;
  int exclamations = 5;     // per run, at most two runs
  int angry_emoji = 15;     // also makes the message a complaint
  int negated_praise = 20;  // "not happy", "never great": a complaint
  int sarcasm = 10;         // praise beside a complaint: "great, another outage"
  // Points for the text's sentiment (SentimentLexicon's compound, -1..1): a negative text gains
  // up to `negative_sentiment` points of urgency and complaint evidence, a positive one loses up
  // to `positive_sentiment`.
  int negative_sentiment = 25;
  int positive_sentiment = 10;
};

// A trained complaint model (`triagectl train --label complaint`) behind the decision. Its
// probability p decides `complaint` (p >= threshold) in place of the lexicon's verdict, and
// adds round(points * p) to the urgency. Categories keep their weights and signals their
// points (shouting, runs of !/? count when the model says complaint), so a calm message about
// a fire stays urgent.
struct ScoringModel {
  std::shared_ptr<const TextModel> model;
  std::string name;                 // how reasons name it (the file's base name)
  std::optional<double> threshold;  // default: the threshold chosen when it was trained
  int points = 60;

  double Threshold() const { return threshold.value_or(model->info().threshold); }
};

struct LevelOptions {
  int min_priority = 0;  // a message gets the first level (urgent first) whose minimum it reaches
  absl::Duration sla = absl::Hours(24);
};

struct ScorerOptions {
  std::vector<CategoryOptions> categories;
  SignalOptions signals;
  // A message is a complaint when its evidence reaches this: the points of the complaint
  // categories it matched, negated praise, angry emoji and negative sentiment, less positive
  // sentiment (a trained model, when set, decides instead).
  int complaint_threshold = 15;
  std::shared_ptr<const SentimentLexicon> sentiment;  // none: no sentiment signal
  // priority = urgency_weight * urgency + reach_weight * reach; the weights sum to 1 so that
  // priority stays in 0..100. Reach is capped so that it never drowns urgency.
  double urgency_weight = 0.75;
  double reach_weight = 0.25;
  int64_t followers_cap = 10'000'000;  // followers at which the follower part of reach maxes out
  int followers_max_points = 80;       // reach points given at followers_cap (log scale below)
  int verified_points = 20;            // legacy verified, business, government
  int blue_points = 8;                 // X "blue" (paid) verification
  std::optional<ScoringModel> model;
  std::array<LevelOptions, kLevelCount> levels = {{
      {60, absl::Minutes(15)},
      {40, absl::Hours(1)},
      {15, absl::Hours(4)},
      {0, absl::Hours(24)},
  }};

  // Cross-field rules: weights sum to 1, level minimums strictly decrease, low's minimum is 0.
  absl::Status Validate() const;
};

// How many words and phrases a model's reason names (the rest are summed as one term).
inline constexpr size_t kModelReasonTerms = 6;

// "<what> +1.92 = bias -0.71, 'still waiting' +1.31, 'refund' +0.84, ...": an explanation as
// one reason line; the terms sum exactly to the score.
std::string ExplainTerms(absl::string_view what, const Explanation& e);

// Computes urgency, complaint, reach, priority, level and SLA deadline of a message, with the
// reasons. All terms of all categories are matched in one Hyperscan pass over the folded text
// (case- and accent-insensitive). Immutable after Create; safe to share between threads.
class Scorer {
 public:
  // InvalidArgument when the options are inconsistent or a term does not compile.
  static absl::StatusOr<std::shared_ptr<const Scorer>> Create(ScorerOptions options);

  // Fills the scoring part of `triage` (everything but team, informed and rule). `tokens`, when
  // given, are the message text's (TokenizeForModel), shared with the router's model.
  void Score(const Message& message, absl::Time received_at, Triage* triage,
             const ModelTokens* tokens = nullptr) const;

  // The same lexicon (compiled once, shared) with another complaint model, or none: what a
  // reload of only the model, or cross-validation, needs without recompiling the lexicon.
  std::shared_ptr<const Scorer> WithModel(std::optional<ScoringModel> model) const;

  const ScorerOptions& options() const { return options_; }

 private:
  explicit Scorer(ScorerOptions options) : options_(std::move(options)) {}
  int Reach(const Author& author, Triage* triage) const;
  int CategoryIndex(absl::string_view name) const;

  ScorerOptions options_;
  std::shared_ptr<const Matcher> matcher_;
  std::vector<int> term_category_;       // matcher term index -> category index
  std::vector<std::string> term_text_;   // matcher term index -> the term as configured
  std::vector<int> term_words_;          // matcher term index -> words in the term
};

}  // namespace triage::router
