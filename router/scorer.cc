#include "router/scorer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "router/sentiment.h"
#include "router/text.h"

namespace triage::router {
namespace {

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

bool IsWordByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Where a match of a `words`-word term that ends at `end` starts: walk back over its words.
size_t TermStart(absl::string_view folded, size_t end, int words) {
  size_t start = end;
  for (int w = 0; w < words; ++w) {
    while (start > 0 && !IsWordByte(folded[start - 1])) --start;
    while (start > 0 && IsWordByte(folded[start - 1])) --start;
  }
  return start;
}

// True when one of the three words before `start` negates what follows ("not happy",
// "never great", "wasn't helpful").
bool Negated(absl::string_view folded, size_t start) {
  // Folded text has no apostrophes: "isn't" reads "isnt".
  static constexpr absl::string_view kNegators[] = {
      "not",  "no",    "never", "isnt",   "wasnt",  "dont",    "didnt",  "doesnt", "arent",
      "wont", "cant",  "cannot", "hardly", "nothing", "nobody", "nor",   "werent", "havent",
      "far",  "less"};
  size_t end = start;
  for (int word = 0; word < 3; ++word) {
    while (end > 0 && !IsWordByte(folded[end - 1])) --end;
    size_t begin = end;
    while (begin > 0 && IsWordByte(folded[begin - 1])) --begin;
    if (begin == end) return false;
    const absl::string_view token = folded.substr(begin, end - begin);
    for (absl::string_view negator : kNegators) {
      if (token == negator) return true;
    }
    end = begin;
  }
  return false;
}

}  // namespace

std::string ExplainTerms(absl::string_view what, const Explanation& e) {
  std::string out = absl::StrFormat("%s %+.2f = bias %+.2f", what, e.score, e.bias);
  for (const Contribution& c : e.terms) absl::StrAppendFormat(&out, ", '%s' %+.2f", c.phrase, c.weight);
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
  if (model) {
    if (model->model == nullptr || model->model->info().label != ModelLabel::kComplaint) {
      return absl::InvalidArgumentError("the scoring model must be a complaint model");
    }
    if (model->threshold && !(*model->threshold > 0 && *model->threshold < 1)) {
      return absl::InvalidArgumentError("the model threshold must be between 0 and 1");
    }
    if (model->points < 0 || model->points > 100) {
      return absl::InvalidArgumentError("the model points must be between 0 and 100");
    }
  }
  if (followers_max_points + std::max(verified_points, blue_points) > 100) {
    return absl::InvalidArgumentError("followers_max_points + verified_points must not exceed 100");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Scorer>> Scorer::Create(ScorerOptions options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  std::shared_ptr<Scorer> scorer(new Scorer(std::move(options)));
  for (size_t c = 0; c < scorer->options_.categories.size(); ++c) {
    for (const std::string& term : scorer->options_.categories[c].terms) {
      scorer->term_category_.push_back(static_cast<int>(c));
      scorer->term_text_.push_back(term);
      int words = 0;
      for (absl::string_view word : absl::StrSplit(term, ' ', absl::SkipWhitespace())) {
        words += word.empty() ? 0 : 1;
      }
      scorer->term_words_.push_back(std::max(words, 1));
    }
  }
  absl::StatusOr<std::shared_ptr<const Matcher>> matcher = Matcher::Build(scorer->term_text_);
  if (!matcher.ok()) return matcher.status();
  scorer->matcher_ = *std::move(matcher);
  return scorer;
}

int Scorer::CategoryIndex(absl::string_view name) const {
  for (size_t c = 0; c < options_.categories.size(); ++c) {
    if (options_.categories[c].name == name) return static_cast<int>(c);
  }
  return 0;
}

std::shared_ptr<const Scorer> Scorer::WithModel(std::optional<ScoringModel> model) const {
  std::shared_ptr<Scorer> scorer(new Scorer(*this));
  scorer->options_.model = std::move(model);
  return scorer;
}

int Scorer::Reach(const Author& author, Triage* triage) const {
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
    const bool blue = author.verified_type == "blue";
    const int points = blue ? options_.blue_points : options_.verified_points;
    reach += points;
    triage->reasons.push_back(absl::StrCat(blue ? "blue-verified" : "verified", " author (+", points, ")"));
  }
  return std::clamp(static_cast<int>(std::lround(reach)), 0, 100);
}

void Scorer::Score(const Message& message, absl::Time received_at, Triage* triage,
                   const ModelTokens* tokens) const {
  thread_local ModelTokens own_tokens;
  auto text_tokens = [&]() -> const ModelTokens& {
    if (tokens == nullptr) {
      TokenizeForModel(message.text, &own_tokens);
      tokens = &own_tokens;
    }
    return *tokens;
  };
  // Buffers reused per thread: scoring allocates only for what it reports.
  thread_local std::string folded;
  thread_local std::vector<Matcher::Hit> hits;
  FoldForMatching(message.text, &folded);
  hits.clear();
  matcher_->Scan(folded, &hits);
  // Report terms in the order they occur (then in configured order), for stable reasons.
  std::sort(hits.begin(), hits.end(), [](const Matcher::Hit& a, const Matcher::Hit& b) {
    return a.end != b.end ? a.end < b.end : a.term < b.term;
  });

  const SignalOptions& points = options_.signals;
  std::vector<int> match_index(options_.categories.size(), -1);
  std::vector<std::string> negated;
  bool praise = false, resolved = false;
  for (const Matcher::Hit& hit : hits) {
    const int c = term_category_[hit.term];
    const CategoryOptions& category = options_.categories[c];
    const CategoryRole role = category.effective_role();
    if (role == CategoryRole::kPraise || role == CategoryRole::kResolution) {
      const size_t start = TermStart(folded, hit.end, term_words_[hit.term]);
      if (Negated(folded, start)) {
        negated.push_back(std::string(absl::string_view(folded).substr(start, hit.end - start)));
        continue;
      }
    }
    praise |= role == CategoryRole::kPraise;
    resolved |= role == CategoryRole::kResolution;
    int& index = match_index[c];
    if (index < 0) {
      index = static_cast<int>(triage->categories.size());
      triage->categories.push_back({category.name, {}, category.weight});
    }
    triage->categories[index].terms.push_back(term_text_[hit.term]);
  }
  // What each category adds: its weight once, or per term up to its cap (weak cues).
  int evidence = 0;  // of a complaint: the complaint categories' points
  for (size_t c = 0; c < match_index.size(); ++c) {
    if (match_index[c] < 0) continue;
    const CategoryOptions& category = options_.categories[c];
    CategoryMatch& match = triage->categories[match_index[c]];
    if (category.per_term) {
      match.weight = std::clamp(category.weight * static_cast<int>(match.terms.size()), -category.max, category.max);
    }
    if (category.effective_role() == CategoryRole::kComplaint) evidence += match.weight;
  }

  const TextSignals signals = ReadSignals(message.text);
  std::vector<std::string> signal_reasons;
  int urgency = 0;
  if (resolved && evidence > 0) {
    // The problem words tell what was fixed: the author is not complaining about it now.
    evidence = 0;
    signal_reasons.push_back("problem words beside a resolution: not a complaint");
  }
  if (!negated.empty()) {
    evidence += points.negated_praise;
    urgency += points.negated_praise;
    signal_reasons.push_back(absl::StrCat("negated praise '", absl::StrJoin(negated, "', '"), "' (+",
                                          points.negated_praise, ")"));
  }
  if (signals.angry_emoji > 0) {
    evidence += points.angry_emoji;
    urgency += points.angry_emoji;
    signal_reasons.push_back(absl::StrCat("angry emoji (+", points.angry_emoji, ")"));
  }
  if (options_.sentiment != nullptr && (points.negative_sentiment > 0 || points.positive_sentiment > 0)) {
    const SentimentLexicon::Result sentiment = options_.sentiment->Score(text_tokens());
    const int shift = sentiment.compound < 0
                          ? static_cast<int>(std::lround(-sentiment.compound * points.negative_sentiment))
                          : -static_cast<int>(std::lround(sentiment.compound * points.positive_sentiment));
    if (shift != 0) {
      evidence += shift;
      urgency += shift;
      std::string words;
      for (const SentimentLexicon::Term& t : sentiment.terms) {
        absl::StrAppendFormat(&words, "%s'%s' %+.1f", words.empty() ? "" : ", ", t.phrase, t.valence);
      }
      signal_reasons.push_back(absl::StrFormat("%s sentiment %+.2f from %s (%+d)", shift > 0 ? "negative" : "positive",
                                               sentiment.compound, words, shift));
    }
  }
  bool complaint = evidence >= options_.complaint_threshold;
  if (evidence > 0 && !complaint && !options_.model) {
    signal_reasons.push_back(absl::StrCat("complaint evidence ", evidence, " below the threshold ",
                                          options_.complaint_threshold, ": not enough for a complaint"));
  }
  if (options_.model) {
    // The model decides; the lexicon's verdict stays in the reasons for comparison.
    const ScoringModel& m = *options_.model;
    const Explanation e = m.model->Explain(text_tokens(), kModelReasonTerms);
    const double p = e.prediction.probability[1];
    const double threshold = m.Threshold();
    const int model_points = static_cast<int>(std::lround(m.points * p));
    if (complaint != (p >= threshold)) {
      signal_reasons.push_back(absl::StrCat("the lexicon alone would say ", complaint ? "complaint" : "not a complaint"));
    }
    complaint = p >= threshold;
    urgency += model_points;
    triage->model_complaint_probability = p;
    signal_reasons.push_back(absl::StrFormat("model %s: complaint probability %.2f %s threshold %.2f (+%d)", m.name, p,
                                             complaint ? ">=" : "<", threshold, model_points));
    signal_reasons.push_back(ExplainTerms(absl::StrCat("model ", m.name, " log-odds"), e));
  }
  if (complaint && praise) {
    // "Great, another outage": the praise words are sarcasm, not satisfaction.
    std::erase_if(triage->categories, [&](const CategoryMatch& m) {
      return options_.categories[CategoryIndex(m.name)].effective_role() == CategoryRole::kPraise;
    });
    urgency += points.sarcasm;
    signal_reasons.push_back(absl::StrCat("praise beside a complaint read as sarcasm (+", points.sarcasm, ")"));
  }
  if (complaint && signals.shouting) {
    urgency += points.shouting;
    signal_reasons.push_back(absl::StrCat("shouting (+", points.shouting, ")"));
  }
  const int runs = std::min(2, signals.exclamation_runs + signals.question_runs);
  if (complaint && runs > 0) {
    urgency += points.exclamations * runs;
    signal_reasons.push_back(absl::StrCat("runs of !/? (+", points.exclamations * runs, ")"));
  }
  for (const CategoryMatch& match : triage->categories) {
    urgency += match.weight;
    triage->reasons.push_back(absl::StrCat("category ", match.name, " (", match.weight > 0 ? "+" : "",
                                           match.weight, ") matched '",
                                           absl::StrJoin(match.terms, "', '"), "'"));
  }
  for (std::string& reason : signal_reasons) triage->reasons.push_back(std::move(reason));
  triage->complaint = complaint;
  triage->urgency = std::clamp(urgency, 0, 100);
  triage->reasons.push_back(complaint ? "complaint: the author reports a problem"
                                      : "not a complaint");

  triage->reach = Reach(message.author, triage);
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
