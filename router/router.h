#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "router/matcher.h"
#include "router/message.h"
#include "router/scorer.h"

namespace triage::router {

// A weekly window in a named time zone, e.g. business hours Mon-Fri 09:00-18:00 Europe/Paris.
// `from` > `to` wraps past midnight. Evaluated on the message's receipt time.
struct TimeWindow {
  absl::TimeZone zone;
  std::string zone_name;
  std::vector<absl::Weekday> days;  // empty: every day
  int from_minute = 0;              // minutes after local midnight
  int to_minute = 24 * 60;

  bool Contains(absl::Time t) const;
};

// One routing rule. Every condition that is set must hold (empty lists and unset bounds match
// anything). A rule with a `team` assigns the owner when it is the first such rule to match;
// `inform` teams and `tags` are collected from every matching rule; the first matching rule
// that sets or shifts the level does so; `drop` stops routing (spam, the brand itself).
struct RuleOptions {
  std::string name;
  // Conditions.
  std::vector<std::string> sources;
  std::vector<std::string> platforms;
  std::vector<std::string> channels;  // public, private
  std::vector<std::string> kinds;     // mention, reply, direct_message, comment, ...
  std::vector<std::string> categories_any;
  std::vector<std::string> categories_all;
  std::vector<Level> levels;
  std::optional<int> min_urgency, max_urgency;
  std::optional<int> min_reach, max_reach;
  std::optional<int> min_priority, max_priority;
  std::optional<int64_t> min_followers, max_followers;  // unknown followers never match these
  std::optional<bool> verified;
  std::optional<bool> complaint;
  std::vector<std::string> languages;
  std::vector<std::string> authors;  // author ids or handles (case-insensitive, '@' optional)
  std::string text_regex;  // Hyperscan syntax, on the folded text (see FoldForMatching)
  std::optional<TimeWindow> time;
  // The team model's confidence in its proposal is at least this (never matches without one).
  std::optional<double> min_model_confidence;
  // Actions.
  std::string team;
  bool model_team = false;  // the owner is the team model's proposal (instead of `team`)
  std::vector<std::string> inform;
  std::vector<std::string> tags;
  std::optional<Level> set_level;
  int raise_levels = 0;  // positive: more urgent; negative: less
  bool drop = false;
  // Whether the customer is acknowledged (the owner team's acknowledge block): true whatever
  // the block's own conditions, false never. The first matching rule that says decides.
  std::optional<bool> acknowledge;
};

// A trained team model (`triagectl train --label team`): it proposes an owner team with its
// probability; rules decide whether to take it (`model_team`, `min_model_confidence`).
struct RoutingModel {
  std::shared_ptr<const TextModel> model;
  std::string name;  // how reasons name it (the file's base name)
};

struct RouterOptions {
  std::vector<std::string> teams;  // every team a rule or the default may name
  std::string default_team;
  std::vector<RuleOptions> rules;
  std::optional<RoutingModel> model;

  // Checks that every team named exists (the model's classes included), rule names are
  // unique, the default is set, and rules that use the model have one.
  absl::Status Validate() const;
};

// Picks the owner team and the informed teams of a scored message. Immutable after Create;
// thread-safe.
// Who owns a conversation: the team of its last routed message, and the most urgent level it
// has reached (unknown for conversations recorded before triaged kept it).
struct ConversationOwner {
  std::string team;
  std::optional<Level> level;
  bool operator==(const ConversationOwner&) const = default;
};

class Router {
 public:
  static absl::StatusOr<std::shared_ptr<const Router>> Create(RouterOptions options);

  // Reads the scores in `triage`, fills team, informed, rule, tags, level changes and adds the
  // routing reasons. `conversation` is the owner of earlier messages of the same conversation,
  // if any: a follow-up goes to the same team, unless it is more urgent than the conversation
  // has been and a rule assigns it another team (an escalation: "I'm calling a lawyer" moves
  // it to legal). `tokens`: as for Scorer::Score.
  void Route(const Message& message, absl::Time received_at, const ConversationOwner* conversation,
             Triage* triage, const ModelTokens* tokens = nullptr) const;

  // The same rules (their regexes compiled once, shared) with another team model, or none.
  // InvalidArgument when the rules need a model and none is given, or it names unknown teams.
  absl::StatusOr<std::shared_ptr<const Router>> WithModel(std::optional<RoutingModel> model) const;
  bool has_model() const { return options_.model.has_value(); }

 private:
  explicit Router(RouterOptions options) : options_(std::move(options)) {}
  bool Matches(const RuleOptions& rule, const Message& message, absl::Time received_at,
               const Triage& triage, const std::vector<bool>& regex_hits, size_t index) const;

  RouterOptions options_;
  std::shared_ptr<const Matcher> regexes_;  // one pattern per rule with a text_regex
  std::vector<int> regex_of_rule_;          // rule index -> pattern index, or -1
};

// Scores then routes: the whole pure decision for one message. Immutable; thread-safe.
class Triager {
 public:
  static absl::StatusOr<std::shared_ptr<const Triager>> Create(ScorerOptions scorer,
                                                               RouterOptions router);

  RoutedMessage Triage(Message message, absl::Time received_at,
                       const ConversationOwner* conversation = nullptr) const;

  // The same lexicon and rules with other trained models (cheap: nothing is recompiled).
  absl::StatusOr<std::shared_ptr<const Triager>> WithModels(std::optional<ScoringModel> complaint,
                                                            std::optional<RoutingModel> team) const;

 private:
  Triager(std::shared_ptr<const Scorer> scorer, std::shared_ptr<const Router> router)
      : scorer_(std::move(scorer)), router_(std::move(router)) {}
  std::shared_ptr<const Scorer> scorer_;
  std::shared_ptr<const Router> router_;
};

}  // namespace triage::router
