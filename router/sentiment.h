#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "router/text_model.h"

namespace triage::router {

// How positive or negative a text reads, from a list of word valences (the shipped list is
// VADER's: config/sentiment_lexicon.tsv). The words are the model's tokens (TokenizeForModel),
// so folding, emoticons and emoji are read the same way everywhere. Rules: a negation among the
// three words before a word flips and damps it ("not good"); an intensifier before it
// strengthens it ("so bad"), a hedge weakens it ("kinda slow"); after "but" words count more
// and before it less ("nice app but it crashes"). The sum s becomes s / sqrt(s^2 + 15), in
// -1..1. Immutable after Parse; thread-safe.
class SentimentLexicon {
 public:
  // Lines "token<TAB>valence" (valence -4..4); '#' starts a comment. InvalidArgument with the
  // line number when one is malformed.
  static absl::StatusOr<std::shared_ptr<const SentimentLexicon>> Parse(absl::string_view text);

  struct Term {
    std::string phrase;  // the word, with its negation or intensifier ("not good")
    double valence;      // after the rules
  };
  struct Result {
    double compound = 0;      // -1..1
    std::vector<Term> terms;  // in text order
  };
  Result Score(const ModelTokens& tokens) const;

  size_t size() const { return valence_.size(); }

 private:
  SentimentLexicon() = default;
  absl::flat_hash_map<std::string, double> valence_;
};

}  // namespace triage::router
