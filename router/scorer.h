#pragma once

#include "absl/strings/string_view.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "router/message.h"

namespace triage::router {

// A category of concern ("outage", "billing", ...): any of its terms found in the text adds
// `weight` to the urgency, once per category. Terms are matched case-insensitively (ASCII) on
// word boundaries; a term may be a phrase ("not working").
struct CategoryOptions {
  std::string name;
  int weight = 0;  // -100..100; negative for categories that calm a message down (praise)
  std::vector<std::string> terms;
};

struct LevelOptions {
  int min_priority = 0;  // a message gets the first level (urgent first) whose minimum it reaches
  absl::Duration sla = absl::Hours(24);
};

struct ScorerOptions {
  std::vector<CategoryOptions> categories;
  // priority = urgency_weight * urgency + reach_weight * reach; the weights sum to 1 so that
  // priority stays in 0..100. Reach is capped so that it never drowns urgency.
  double urgency_weight = 0.75;
  double reach_weight = 0.25;
  int64_t followers_cap = 10'000'000;  // followers at which the follower part of reach maxes out
  int followers_max_points = 80;       // reach points given at followers_cap (log scale below)
  int verified_points = 20;
  std::array<LevelOptions, kLevelCount> levels = {{
      {60, absl::Minutes(15)},
      {40, absl::Hours(1)},
      {15, absl::Hours(4)},
      {0, absl::Hours(24)},
  }};

  // Cross-field rules: weights sum to 1, level minimums strictly decrease, low's minimum is 0.
  absl::Status Validate() const;
};

// Computes urgency, reach, priority, level and SLA deadline of a message, with reasons.
// Immutable after construction; safe to share between threads.
class Scorer {
 public:
  explicit Scorer(ScorerOptions options);

  // Fills the scoring part of `triage` (everything but team, informed and rule).
  void Score(const Message& message, absl::Time received_at, Triage* triage) const;

  const ScorerOptions& options() const { return options_; }

 private:
  struct Term {
    std::string text;  // lower-cased
    int category;      // index into options_.categories
  };

  ScorerOptions options_;
  std::vector<Term> terms_;
};

// Lower-cases ASCII letters; other bytes (UTF-8 sequences included) are kept as they are.
std::string AsciiLowerCopy(absl::string_view text);

}  // namespace triage::router
