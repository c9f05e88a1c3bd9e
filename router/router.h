#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "router/message.h"
#include "router/scorer.h"

namespace triage::router {

// One routing rule. Every condition that is set must hold (empty lists and unset bounds match
// anything). A rule with a `team` assigns the owner when it is the first such rule to match;
// `inform` teams are collected from every matching rule.
struct RuleOptions {
  std::string name;
  std::vector<std::string> sources;
  std::vector<std::string> platforms;
  std::vector<std::string> categories_any;
  std::vector<Level> levels;
  std::optional<int> min_urgency;
  std::optional<int> min_reach;
  std::optional<int> min_priority;
  std::string team;
  std::vector<std::string> inform;
};

struct RouterOptions {
  std::vector<std::string> teams;  // every team a rule or the default may name
  std::string default_team;
  std::vector<RuleOptions> rules;

  // Checks that every team named exists, rule names are unique, and the default is set.
  absl::Status Validate() const;
};

// Picks the owner team and the informed teams of a scored message. Immutable; thread-safe.
class Router {
 public:
  explicit Router(RouterOptions options) : options_(std::move(options)) {}

  // Reads the scores in `triage`, fills team, informed, rule and adds the routing reasons.
  void Route(const Message& message, Triage* triage) const;

 private:
  RouterOptions options_;
};

// Scores then routes: the whole pure decision for one message. Immutable; thread-safe.
class Triager {
 public:
  Triager(ScorerOptions scorer, RouterOptions router)
      : scorer_(std::move(scorer)), router_(std::move(router)) {}

  RoutedMessage Triage(Message message, absl::Time received_at) const;

 private:
  Scorer scorer_;
  Router router_;
};

}  // namespace triage::router
