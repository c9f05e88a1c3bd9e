#include "router/sentiment.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace triage::router {
namespace {

constexpr absl::string_view kNegators[] = {
    "not",    "no",     "never",  "isnt",    "wasnt",   "dont",    "didnt", "doesnt", "arent",  "wont",
    "cant",   "cannot", "hardly", "nothing", "nobody",  "nor",     "werent", "havent", "hasnt", "hadnt",
    "couldnt", "wouldnt", "shouldnt", "neither", "without", "aint", "none",  "nowhere"};
constexpr absl::string_view kIntensifiers[] = {
    "very",  "so",   "really", "extremely", "totally", "absolutely", "completely", "super", "incredibly",
    "too",   "such", "most",   "utterly",   "truly",   "highly",     "seriously",  "literally", "fucking",
    "freaking", "damn", "insanely"};
constexpr absl::string_view kHedges[] = {"kinda",  "kind",   "sorta",  "slightly", "somewhat", "barely",
                                         "little", "partly", "fairly", "almost",   "marginally"};

template <size_t N>
bool In(const absl::string_view (&list)[N], absl::string_view word) {
  for (absl::string_view w : list) {
    if (w == word) return true;
  }
  return false;
}

constexpr double kNegationFactor = -0.74;  // "not good" is milder than "bad"
constexpr double kShift = 0.3;             // an intensifier or hedge moves a valence this much
constexpr double kBeforeBut = 0.5, kAfterBut = 1.5;
constexpr double kNormaliser = 15;  // s / sqrt(s^2 + 15): about -0.6 for one strongly negative word

}  // namespace

absl::StatusOr<std::shared_ptr<const SentimentLexicon>> SentimentLexicon::Parse(absl::string_view text) {
  std::shared_ptr<SentimentLexicon> lexicon(new SentimentLexicon());
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    double valence = 0;
    if (fields.size() < 2 || fields[0].empty() || !absl::SimpleAtod(fields[1], &valence) || valence < -4 ||
        valence > 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("sentiment lexicon line ", number, ": expected token<TAB>valence (-4..4)"));
    }
    lexicon->valence_.try_emplace(std::string(fields[0]), valence);
  }
  return lexicon;
}

SentimentLexicon::Result SentimentLexicon::Score(const ModelTokens& tokens) const {
  Result result;
  const size_t n = tokens.tokens.size();
  size_t but = n;
  for (size_t i = 0; i < n; ++i) {
    if (tokens.tokens[i] == "but") {
      but = i;
      break;
    }
  }
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto found = valence_.find(tokens.tokens[i]);
    if (found == valence_.end()) continue;
    double v = found->second;
    std::string phrase = tokens.tokens[i];
    if (i > 0 && In(kIntensifiers, tokens.tokens[i - 1])) {
      v += v > 0 ? kShift : -kShift;
      phrase = absl::StrCat(tokens.tokens[i - 1], " ", phrase);
    } else if (i > 0 && In(kHedges, tokens.tokens[i - 1])) {
      v -= v > 0 ? std::min(kShift, v) : std::max(-kShift, v);
      phrase = absl::StrCat(tokens.tokens[i - 1], " ", phrase);
    }
    for (size_t back = 1; back <= 3 && back <= i; ++back) {
      if (In(kNegators, tokens.tokens[i - back])) {
        v *= kNegationFactor;
        if (back > 1 || phrase == tokens.tokens[i]) phrase = absl::StrCat(tokens.tokens[i - back], " ", phrase);
        break;
      }
    }
    if (but < n) v *= i < but ? kBeforeBut : (i > but ? kAfterBut : 1.0);
    if (v == 0) continue;
    sum += v;
    result.terms.push_back({std::move(phrase), v});
  }
  result.compound = sum / std::sqrt(sum * sum + kNormaliser);
  return result;
}

}  // namespace triage::router
