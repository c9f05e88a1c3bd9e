#include "router/router.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "router/text.h"

namespace triage::router {
namespace {

template <typename T>
bool Contains(const std::vector<T>& values, const T& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool HasCategory(const Triage& triage, const std::string& name) {
  return std::any_of(triage.categories.begin(), triage.categories.end(),
                     [&](const CategoryMatch& m) { return m.name == name; });
}

bool InRange(int value, const std::optional<int>& min, const std::optional<int>& max) {
  return (!min || value >= *min) && (!max || value <= *max);
}

}  // namespace

bool TimeWindow::Contains(absl::Time t) const {
  const absl::CivilSecond local = absl::ToCivilSecond(t, zone);
  const int minute = local.hour() * 60 + local.minute();
  absl::CivilDay day = absl::CivilDay(local);
  bool in_time;
  if (from_minute <= to_minute) {
    in_time = minute >= from_minute && minute < to_minute;
  } else {
    // Overnight: the part after midnight belongs to the window that started the day before.
    in_time = minute >= from_minute || minute < to_minute;
    if (minute < to_minute) day = day - 1;
  }
  return in_time && (days.empty() || router::Contains(days, absl::GetWeekday(day)));
}

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
    if (rule.team.empty() && !rule.model_team && rule.inform.empty() && rule.tags.empty() && !rule.set_level &&
        rule.raise_levels == 0 && !rule.drop && !rule.acknowledge) {
      return absl::InvalidArgumentError(absl::StrCat("rule '", rule.name, "' has no action"));
    }
    if (rule.model_team && !rule.team.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("rule '", rule.name, "' sets both team and model_team"));
    }
    if ((rule.model_team || rule.min_model_confidence) && !model) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule '", rule.name, "' uses the team model, but routing.model is not set"));
    }
  }
  if (model) {
    if (model->model == nullptr || model->model->info().label != ModelLabel::kTeam) {
      return absl::InvalidArgumentError("the routing model must be a team model");
    }
    for (const std::string& team : model->model->info().classes) {
      if (!known.contains(team)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the team model ", model->name, " proposes team '", team, "', which is not a team"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Router>> Router::Create(RouterOptions options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  std::shared_ptr<Router> router(new Router(std::move(options)));
  std::vector<std::string> expressions;
  for (const RuleOptions& rule : router->options_.rules) {
    router->regex_of_rule_.push_back(rule.text_regex.empty() ? -1 : static_cast<int>(expressions.size()));
    if (!rule.text_regex.empty()) expressions.push_back(rule.text_regex);
  }
  absl::StatusOr<std::shared_ptr<const Matcher>> regexes = Matcher::BuildRegexes(expressions);
  if (!regexes.ok()) return regexes.status();
  router->regexes_ = *std::move(regexes);
  return router;
}

bool Router::Matches(const RuleOptions& rule, const Message& message, absl::Time received_at,
                     const Triage& triage, const std::vector<bool>& regex_hits, size_t index) const {
  if (!rule.sources.empty() && !Contains(rule.sources, message.source)) return false;
  if (!rule.platforms.empty() && !Contains(rule.platforms, message.platform)) return false;
  if (!rule.channels.empty() && !Contains(rule.channels, message.channel)) return false;
  if (!rule.kinds.empty() && !Contains(rule.kinds, message.kind)) return false;
  if (!rule.levels.empty() && !Contains(rule.levels, triage.level)) return false;
  if (!rule.languages.empty() && !Contains(rule.languages, message.language)) return false;
  if (!InRange(triage.urgency, rule.min_urgency, rule.max_urgency)) return false;
  if (!InRange(triage.reach, rule.min_reach, rule.max_reach)) return false;
  if (!InRange(triage.priority, rule.min_priority, rule.max_priority)) return false;
  if (rule.min_followers || rule.max_followers) {
    const std::optional<int64_t>& f = message.author.followers;
    if (!f || (rule.min_followers && *f < *rule.min_followers) ||
        (rule.max_followers && *f > *rule.max_followers)) {
      return false;
    }
  }
  if (rule.verified && message.author.verified != *rule.verified) return false;
  if (rule.complaint && triage.complaint != *rule.complaint) return false;
  if (!rule.categories_any.empty() &&
      std::none_of(rule.categories_any.begin(), rule.categories_any.end(),
                   [&](const std::string& c) { return HasCategory(triage, c); })) {
    return false;
  }
  if (!std::all_of(rule.categories_all.begin(), rule.categories_all.end(),
                   [&](const std::string& c) { return HasCategory(triage, c); })) {
    return false;
  }
  if (!rule.authors.empty() &&
      std::none_of(rule.authors.begin(), rule.authors.end(), [&](const std::string& a) {
        return a == message.author.id ||
               (!message.author.handle.empty() &&
                absl::EqualsIgnoreCase(absl::StripPrefix(a, "@"), message.author.handle));
      })) {
    return false;
  }
  if (regex_of_rule_[index] >= 0 && !regex_hits[regex_of_rule_[index]]) return false;
  if (rule.time && !rule.time->Contains(received_at)) return false;
  if (rule.min_model_confidence &&
      (triage.model_team.empty() || triage.model_team_confidence < *rule.min_model_confidence)) {
    return false;
  }
  return true;
}

void Router::Route(const Message& message, absl::Time received_at,
                   const ConversationOwner* conversation, Triage* triage, const ModelTokens* tokens) const {
  thread_local std::vector<bool> regex_hits;
  regex_hits.assign(regexes_->size(), false);
  if (regexes_->size() > 0) {
    thread_local std::string folded;
    thread_local std::vector<Matcher::Hit> hits;
    FoldForMatching(message.text, &folded);
    hits.clear();
    regexes_->Scan(folded, &hits);
    for (const Matcher::Hit& hit : hits) regex_hits[hit.term] = true;
  }
  if (options_.model) {
    const Explanation e = tokens != nullptr ? options_.model->model->Explain(*tokens, kModelReasonTerms)
                                            : options_.model->model->Explain(message.text, kModelReasonTerms);
    triage->model_team = options_.model->model->info().classes[e.prediction.best];
    triage->model_team_confidence = e.prediction.Confidence();
    triage->reasons.push_back(absl::StrFormat("model %s proposes team %s (probability %.2f)", options_.model->name,
                                              triage->model_team, triage->model_team_confidence));
    triage->reasons.push_back(ExplainTerms(absl::StrCat("model ", options_.model->name, " margin of ",
                                                        triage->model_team, " over the next team"),
                                           e));
  }
  bool level_changed = false;
  // The reason that names the rule's team, and what it says instead when the conversation's
  // owner keeps the message.
  std::optional<size_t> team_reason;
  std::string team_reason_if_kept;
  for (size_t i = 0; i < options_.rules.size(); ++i) {
    const RuleOptions& rule = options_.rules[i];
    if (!Matches(rule, message, received_at, *triage, regex_hits, i)) continue;
    if (rule.drop) {
      triage->dropped = true;
      triage->rule = rule.name;
      triage->reasons.push_back(absl::StrCat("rule ", rule.name, " dropped the message"));
      break;
    }
    if (!triage->acknowledge && rule.acknowledge) {
      triage->acknowledge = rule.acknowledge;
      triage->reasons.push_back(absl::StrCat("rule ", rule.name, *rule.acknowledge ? " acknowledges" : " does not acknowledge",
                                             " the customer"));
    }
    if (triage->team.empty() && !rule.team.empty()) {
      triage->team = rule.team;
      triage->rule = rule.name;
      team_reason = triage->reasons.size();
      triage->reasons.push_back(absl::StrCat("rule ", rule.name, " assigned team ", rule.team));
      team_reason_if_kept = absl::StrCat("rule ", rule.name, " would assign team ", rule.team,
                                         ", but the conversation stays with its owner");
    }
    if (triage->team.empty() && rule.model_team && !triage->model_team.empty()) {
      triage->team = triage->model_team;
      triage->rule = rule.name;
      team_reason = triage->reasons.size();
      triage->reasons.push_back(absl::StrFormat("rule %s took the model's team %s (probability %.2f)", rule.name,
                                                triage->team, triage->model_team_confidence));
      team_reason_if_kept =
          absl::StrFormat("rule %s would take the model's team %s (probability %.2f), but the conversation "
                          "stays with its owner",
                          rule.name, triage->team, triage->model_team_confidence);
    }
    for (const std::string& team : rule.inform) {
      if (!Contains(triage->informed, team)) triage->informed.push_back(team);
    }
    if (!rule.inform.empty()) {
      triage->reasons.push_back(
          absl::StrCat("rule ", rule.name, " informs ", absl::StrJoin(rule.inform, ", ")));
    }
    for (const std::string& tag : rule.tags) {
      if (!Contains(triage->tags, tag)) triage->tags.push_back(tag);
    }
    if (!level_changed && (rule.set_level || rule.raise_levels != 0)) {
      const int before = static_cast<int>(triage->level);
      const int after = rule.set_level ? static_cast<int>(*rule.set_level)
                                       : std::clamp(before - rule.raise_levels, 0, kLevelCount - 1);
      triage->level = static_cast<Level>(after);
      level_changed = true;
      triage->reasons.push_back(absl::StrCat("rule ", rule.name, " changed the level from ",
                                             LevelName(static_cast<Level>(before)), " to ",
                                             LevelName(triage->level)));
    }
  }
  if (triage->dropped) {
    if (triage->team.empty()) triage->team = options_.default_team;
    triage->informed.clear();
    return;
  }
  if (conversation != nullptr && !conversation->team.empty() && Contains(options_.teams, conversation->team) &&
      conversation->team != triage->team) {
    const bool assigned = !triage->team.empty();  // by a rule (the default comes below)
    if (assigned && conversation->level && triage->level < *conversation->level) {
      // More urgent than the conversation has been, and a rule wants another team: it moves.
      triage->reasons.push_back(absl::StrCat("follow-up in conversation ", message.conversation_id,
                                             " raised the level from ", LevelName(*conversation->level), " to ",
                                             LevelName(triage->level), ": it moves from ", conversation->team,
                                             " to ", triage->team));
    } else {
      // The rule's team does not take it: say so instead of "assigned".
      if (team_reason) triage->reasons[*team_reason] = std::move(team_reason_if_kept);
      triage->reasons.push_back(absl::StrCat("follow-up in conversation ", message.conversation_id,
                                             ": same owner as before, ", conversation->team));
      triage->team = conversation->team;
      triage->rule = "conversation";
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

absl::StatusOr<std::shared_ptr<const Router>> Router::WithModel(std::optional<RoutingModel> model) const {
  std::shared_ptr<Router> router(new Router(*this));
  router->options_.model = std::move(model);
  if (auto s = router->options_.Validate(); !s.ok()) return s;
  return router;
}

absl::StatusOr<std::shared_ptr<const Triager>> Triager::WithModels(std::optional<ScoringModel> complaint,
                                                                   std::optional<RoutingModel> team) const {
  ScorerOptions check = scorer_->options();
  check.model = complaint;
  if (auto s = check.Validate(); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const Router>> router = router_->WithModel(std::move(team));
  if (!router.ok()) return router.status();
  return std::shared_ptr<const Triager>(new Triager(scorer_->WithModel(std::move(complaint)), *std::move(router)));
}

absl::StatusOr<std::shared_ptr<const Triager>> Triager::Create(ScorerOptions scorer,
                                                               RouterOptions router) {
  absl::StatusOr<std::shared_ptr<const Scorer>> s = Scorer::Create(std::move(scorer));
  if (!s.ok()) return s.status();
  absl::StatusOr<std::shared_ptr<const Router>> r = Router::Create(std::move(router));
  if (!r.ok()) return r.status();
  return std::shared_ptr<const Triager>(new Triager(*std::move(s), *std::move(r)));
}

RoutedMessage Triager::Triage(Message message, absl::Time received_at,
                              const ConversationOwner* conversation) const {
  RoutedMessage routed{std::move(message), received_at, {}};
  // One tokenization for the sentiment and both models, when any of them reads tokens.
  thread_local ModelTokens tokens;
  const ModelTokens* shared = nullptr;
  if (router_->has_model()) {
    TokenizeForModel(routed.message.text, &tokens);
    shared = &tokens;
  }
  scorer_->Score(routed.message, received_at, &routed.triage, shared);
  const Level scored = routed.triage.level;
  router_->Route(routed.message, received_at, conversation, &routed.triage, shared);
  if (routed.triage.level != scored) {
    routed.triage.sla_deadline =
        received_at + scorer_->options().levels[static_cast<int>(routed.triage.level)].sla;
  }
  return routed;
}

}  // namespace triage::router
