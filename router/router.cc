#include "router/router.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace triage::router {
namespace {

template <typename T>
bool Contains(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool Matches(const RuleOptions& rule, const Message& message, const Triage& triage) {
  if (!rule.sources.empty() && !Contains(rule.sources, message.source)) return false;
  if (!rule.platforms.empty() && !Contains(rule.platforms, message.platform)) return false;
  if (!rule.levels.empty() && !Contains(rule.levels, triage.level)) return false;
  if (rule.min_urgency && triage.urgency < *rule.min_urgency) return false;
  if (rule.min_reach && triage.reach < *rule.min_reach) return false;
  if (rule.min_priority && triage.priority < *rule.min_priority) return false;
  if (!rule.categories_any.empty()) {
    const bool any = std::any_of(
        triage.categories.begin(), triage.categories.end(),
        [&](const CategoryMatch& match) { return Contains(rule.categories_any, match.name); });
    if (!any) return false;
  }
  return true;
}

}  // namespace

absl::Status RouterOptions::Validate() const {
  const absl::flat_hash_set<std::string> known(teams.begin(), teams.end());
  if (default_team.empty()) return absl::InvalidArgumentError("a default team is required");
  if (!known.contains(default_team)) {
    return absl::InvalidArgumentError(absl::StrCat("default team '", default_team, "' is not a team"));
  }
  absl::flat_hash_set<std::string> names;
  for (const RuleOptions& rule : rules) {
    if (!names.insert(rule.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("rule name '", rule.name, "' is used twice"));
    }
    if (!rule.team.empty() && !known.contains(rule.team)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule '", rule.name, "' names unknown team '", rule.team, "'"));
    }
    for (const std::string& team : rule.inform) {
      if (!known.contains(team)) {
        return absl::InvalidArgumentError(
            absl::StrCat("rule '", rule.name, "' informs unknown team '", team, "'"));
      }
    }
    if (rule.team.empty() && rule.inform.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule '", rule.name, "' has neither a team nor teams to inform"));
    }
  }
  return absl::OkStatus();
}

void Router::Route(const Message& message, Triage* triage) const {
  for (const RuleOptions& rule : options_.rules) {
    if (!Matches(rule, message, *triage)) continue;
    if (triage->team.empty() && !rule.team.empty()) {
      triage->team = rule.team;
      triage->rule = rule.name;
      triage->reasons.push_back(absl::StrCat("rule ", rule.name, " assigned team ", rule.team));
    }
    for (const std::string& team : rule.inform) {
      if (!Contains(triage->informed, team)) triage->informed.push_back(team);
    }
    if (!rule.inform.empty()) {
      triage->reasons.push_back(
          absl::StrCat("rule ", rule.name, " informs ", absl::StrJoin(rule.inform, ", ")));
    }
  }
  if (triage->team.empty()) {
    triage->team = options_.default_team;
    triage->rule = "default";
    triage->reasons.push_back(absl::StrCat("no rule assigned a team: default team ", triage->team));
  }
  // The owner already gets the ticket; informing it again would only duplicate work.
  std::erase(triage->informed, triage->team);
}

RoutedMessage Triager::Triage(Message message, absl::Time received_at) const {
  RoutedMessage routed{std::move(message), received_at, {}};
  scorer_.Score(routed.message, received_at, &routed.triage);
  router_.Route(routed.message, &routed.triage);
  return routed;
}

}  // namespace triage::router
