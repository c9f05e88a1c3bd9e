#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace triage::router {

// What a model predicts. A complaint model has one output (the probability of a complaint);
// team and level models have one class per team or level.
enum class ModelLabel { kComplaint, kTeam, kLevel };
absl::string_view ModelLabelName(ModelLabel label);
bool ParseModelLabel(absl::string_view name, ModelLabel* label);

// The words of a text as a model sees them, shared by training and inference (one function,
// so the two can never drift apart). The text is folded as for the lexicon (case, accents,
// apostrophes: see FoldForMatching); @handles become "@user", links "<url>", numbers "0";
// runs of '!' or '?' are tokens ("!", "!!", "?", "??", "?!"), as are "$" (and £, €),
// "...", emoticons such as ":(" and each emoji. Other punctuation separates words.
struct ModelTokens {
  std::string folded;
  std::vector<std::string> tokens;
  std::vector<bool> is_word;  // a word (char n-grams are taken from it), not a marker or symbol
};
void TokenizeForModel(absl::string_view text, ModelTokens* out);

// How texts become features. Stored in the model file, so inference computes exactly the
// features the model was trained on.
struct FeatureOptions {
  int word_ngrams = 2;   // unigrams, and bigrams of adjacent tokens when 2
  int char_min = 3;      // character n-grams of each word, with '<' and '>' around it
  int char_max = 5;      // 0 for none
  int bucket_bits = 20;  // features are hashed into 2^bits buckets
};

struct TrainOptions {
  FeatureOptions features;
  // L2 penalty: the loss summed over the examples plus l2/2 * |w|^2, chosen among these by
  // an inner cross-validation (the log loss of the held-out predictions).
  std::vector<double> l2_grid = {0.1, 0.3, 1.0, 3.0};
  int inner_folds = 4;       // for the choice of l2 and the decision threshold
  uint64_t seed = 1;         // the only source of randomness: fold assignment
  int max_iterations = 200;  // L-BFGS
  bool tune_threshold = true;  // binary: the threshold that maximises macro-F1 out of fold
  bool nb_scaling = true;      // binary: features scaled by their naive-Bayes log-count ratio
};

struct LabelledText {
  std::string text;
  int label = 0;  // index into the model's classes; binary: 1 = the positive class
};

// What pushed a prediction: one word or phrase and its exact share of the score.
struct Contribution {
  std::string phrase;  // one token, or two adjacent tokens for a bigram
  double weight = 0;   // its share of Explanation::score
};

struct Prediction {
  int best = 0;                      // the predicted class (binary: 1 when probability >= threshold)
  std::vector<double> probability;   // per class (binary: two entries, [0] = 1 - [1])
  double Confidence() const { return probability[best]; }
};

// Why the model predicted what it did. `score` is the log-odds of the positive class (binary:
// a positive weight pushes towards it) or the predicted class's margin over the runner-up
// class; it equals `bias` plus the sum of the terms' weights exactly: the model is linear.
struct Explanation {
  Prediction prediction;
  double score = 0;
  double bias = 0;
  std::vector<Contribution> terms;  // biggest magnitude first; the cut ones summed last
};

struct ModelInfo {
  ModelLabel label = ModelLabel::kComplaint;
  std::vector<std::string> classes;  // complaint: {"no", "yes"}; team: team names; level: level names
  FeatureOptions features;
  double l2 = 1.0;
  double threshold = 0.5;  // binary only
  int64_t examples = 0;
  std::vector<int64_t> class_counts;
  std::string name;  // free text set by the trainer (e.g. the input file), shown in reasons
};

// A trained linear model over hashed word and character n-grams: logistic regression for a
// binary label, softmax regression otherwise. Linear, so every prediction decomposes exactly
// into the bias plus one term per word or phrase (Explain). Immutable and thread-safe.
class TextModel {
 public:
  // Trains on `examples` (labels index `info.classes`). Deterministic for equal inputs and
  // options. InvalidArgument when a class has no example or there are fewer than 2 classes.
  static absl::StatusOr<std::shared_ptr<const TextModel>> Train(const std::vector<LabelledText>& examples,
                                                                 ModelInfo info, const TrainOptions& options);

  // The versioned file format (see Serialize); InvalidArgument with the reason when `bytes`
  // are not a model this version can read (bad magic, version, truncation, checksum).
  static absl::StatusOr<std::shared_ptr<const TextModel>> Parse(absl::string_view bytes);
  std::string Serialize() const;

  Prediction Predict(absl::string_view text) const;
  Prediction Predict(const ModelTokens& tokens) const;  // tokens from TokenizeForModel
  // The prediction with its exact decomposition: at most `limit` words and phrases, then one
  // "(other words)" term for the rest.
  Explanation Explain(absl::string_view text, size_t limit) const;
  Explanation Explain(const ModelTokens& tokens, size_t limit) const;

  const ModelInfo& info() const { return info_; }
  bool binary() const { return outputs_ == 1; }
  size_t stored_buckets() const { return rows_; }

 private:
  TextModel() = default;
  // Scores per output into `z`; with `phrases`, each phrase's share per output too.
  void Compute(const ModelTokens& tokens, std::vector<double>* z, std::vector<double>* phrases) const;
  Prediction ToPrediction(const std::vector<double>& z) const;
  void BuildTable(const std::vector<uint32_t>& buckets, const std::vector<float>& weights);
  // The weights of a bucket (outputs_ floats, as 32-bit words), or null when no training text
  // had it.
  const uint32_t* Row(uint32_t bucket) const;

  ModelInfo info_;
  int outputs_ = 1;             // 1 for binary, else the number of classes
  std::vector<double> bias_;    // per output
  // Sparse weights of the buckets some training text touched, in an open-addressing table
  // (linear probing, at most half full): each slot is the bucket (kEmptySlot when free) then
  // its `outputs_` weights, so a lookup touches one place in memory.
  static constexpr uint32_t kEmptySlot = 0xFFFFFFFF;  // buckets are below 2^26
  std::vector<uint32_t> table_;
  uint32_t slot_mask_ = 0;
  size_t rows_ = 0;
};

// Feature hashing: FNV-1a over a group tag and the feature's bytes. Model files depend on it:
// it never changes within a format version.
uint64_t HashFeature(char group, absl::string_view a, absl::string_view b = {});

}  // namespace triage::router
