#include "router/scorer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace triage::router {
namespace {

bool IsWordByte(unsigned char c) { return absl::ascii_isalnum(c) || c >= 0x80 || c == '_'; }

// True when `term` occurs in `text` with a word boundary on both sides.
bool ContainsWord(absl::string_view text, absl::string_view term) {
  size_t pos = 0;
  while ((pos = text.find(term, pos)) != absl::string_view::npos) {
    const size_t end = pos + term.size();
    const bool left_ok = pos == 0 || !IsWordByte(text[pos - 1]) || !IsWordByte(term.front());
    const bool right_ok = end == text.size() || !IsWordByte(text[end]) || !IsWordByte(term.back());
    if (left_ok && right_ok) return true;
    ++pos;
  }
  return false;
}

std::string FollowerBand(int64_t followers) {
  static constexpr std::array<std::pair<int64_t, const char*>, 6> kBands = {{
      {1'000'000, ">=1M"},
      {100'000, "100k-1M"},
      {10'000, "10k-100k"},
      {1'000, "1k-10k"},
      {100, "100-1k"},
      {0, "<100"},
  }};
  for (const auto& [min, name] : kBands) {
    if (followers >= min) return name;
  }
  return "<100";
}

}  // namespace

std::string AsciiLowerCopy(absl::string_view text) {
  std::string out(text);
  absl::AsciiStrToLower(&out);
  return out;
}

absl::Status ScorerOptions::Validate() const {
  if (std::abs(urgency_weight + reach_weight - 1.0) > 1e-6) {
    return absl::InvalidArgumentError(absl::StrCat("urgency and reach weights must sum to 1, got ",
                                                   urgency_weight + reach_weight));
  }
  for (int i = 1; i < kLevelCount; ++i) {
    if (levels[i].min_priority >= levels[i - 1].min_priority) {
      return absl::InvalidArgumentError(
          absl::StrCat("level '", LevelName(static_cast<Level>(i)),
                       "' must have a lower min_priority than '",
                       LevelName(static_cast<Level>(i - 1)), "'"));
    }
  }
  if (levels[kLevelCount - 1].min_priority != 0) {
    return absl::InvalidArgumentError("level 'low' must have min_priority 0");
  }
  if (followers_cap < 10) return absl::InvalidArgumentError("followers_cap must be at least 10");
  if (followers_max_points + verified_points > 100) {
    return absl::InvalidArgumentError("followers_max_points + verified_points must not exceed 100");
  }
  return absl::OkStatus();
}

Scorer::Scorer(ScorerOptions options) : options_(std::move(options)) {
  for (size_t c = 0; c < options_.categories.size(); ++c) {
    for (const std::string& term : options_.categories[c].terms) {
      terms_.push_back({AsciiLowerCopy(term), static_cast<int>(c)});
    }
  }
}

void Scorer::Score(const Message& message, absl::Time received_at, Triage* triage) const {
  const std::string text = AsciiLowerCopy(message.text);

  // Urgency: each category counts once, with every term of it that matched as its evidence.
  std::vector<int> match_index(options_.categories.size(), -1);
  int urgency = 0;
  for (const Term& term : terms_) {
    if (!ContainsWord(text, term.text)) continue;
    int& index = match_index[term.category];
    if (index < 0) {
      const CategoryOptions& category = options_.categories[term.category];
      index = static_cast<int>(triage->categories.size());
      triage->categories.push_back({category.name, {}, category.weight});
      urgency += category.weight;
    }
    triage->categories[index].terms.push_back(term.text);
  }
  triage->urgency = std::clamp(urgency, 0, 100);
  for (const CategoryMatch& match : triage->categories) {
    triage->reasons.push_back(absl::StrCat("category ", match.name, " (", match.weight > 0 ? "+" : "",
                                           match.weight, ") matched '",
                                           absl::StrJoin(match.terms, "', '"), "'"));
  }

  // Reach: log scale of followers up to a cap, plus a flat bonus for verified authors.
  const Author& author = message.author;
  triage->reach_known = author.followers.has_value();
  double reach = 0;
  if (author.followers) {
    const int64_t followers = std::clamp<int64_t>(*author.followers, 0, options_.followers_cap);
    reach = options_.followers_max_points * std::log10(1.0 + static_cast<double>(followers)) /
            std::log10(1.0 + static_cast<double>(options_.followers_cap));
    triage->reasons.push_back(absl::StrCat("followers ", *author.followers, " (band ",
                                           FollowerBand(*author.followers), ")"));
  } else if (author.assumed_reach) {
    reach = *author.assumed_reach;
    triage->reasons.push_back(absl::StrCat(
        "reach unknown: the platform gives no follower count; source default ", reach));
  } else {
    triage->reasons.push_back("reach unknown: the platform gave no follower count");
  }
  if (!author.known_as.empty()) triage->reasons.push_back(absl::StrCat("known author: ", author.known_as));
  if (author.verified) {
    reach += options_.verified_points;
    triage->reasons.push_back(absl::StrCat("verified author (+", options_.verified_points, ")"));
  }
  triage->reach = std::clamp(static_cast<int>(std::lround(reach)), 0, 100);

  const double priority =
      options_.urgency_weight * triage->urgency + options_.reach_weight * triage->reach;
  triage->priority = std::clamp(static_cast<int>(std::lround(priority)), 0, 100);
  for (int i = 0; i < kLevelCount; ++i) {
    if (triage->priority >= options_.levels[i].min_priority) {
      triage->level = static_cast<Level>(i);
      break;
    }
  }
  triage->sla_deadline = received_at + options_.levels[static_cast<int>(triage->level)].sla;
  triage->reasons.push_back(absl::StrCat("priority ", triage->priority, " = ",
                                         options_.urgency_weight, " x urgency ", triage->urgency,
                                         " + ", options_.reach_weight, " x reach ", triage->reach,
                                         " -> level ", LevelName(triage->level)));
}

}  // namespace triage::router
