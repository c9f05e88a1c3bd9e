#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace triage::router {

// Seeded stratified assignment of examples to `folds` folds: each class is shuffled with the
// seed and dealt round-robin, so every fold holds about the same share of every class.
// `labels[i]` is the class of example i (0-based); returns the fold of each example.
std::vector<int> StratifiedFolds(const std::vector<int>& labels, int folds, uint64_t seed);

// Area under the ROC curve of `score` against a binary label (ties share their rank, so a
// constant score gives 0.5). 0.5 too when one class is absent.
double RocAuc(std::vector<std::pair<double, int>> scored);

// Collects predictions against labels and reports the usual classification figures.
class Evaluation {
 public:
  explicit Evaluation(std::vector<std::string> classes);

  // `scores[k]`: how strongly the prediction leans to class k (a probability, or for a binary
  // label any score of the positive class in scores[1]); used for ROC AUC.
  void Add(int actual, int predicted, const std::vector<double>& scores);

  struct Result {
    std::vector<std::string> classes;
    std::vector<std::vector<int64_t>> confusion;  // [actual][predicted]
    int64_t total = 0;
    double accuracy = 0;
    std::vector<double> precision, recall, f1;  // per class
    double macro_f1 = 0;
    double auc = 0;  // binary: of the positive class's score; otherwise the mean one-vs-rest AUC
  };
  Result Compute() const;

 private:
  std::vector<std::string> classes_;
  std::vector<std::vector<int64_t>> confusion_;
  std::vector<std::vector<std::pair<double, int>>> scored_;  // per class: (score, is that class)
};

// The result as a table for people, or as one JSON object.
std::string FormatEvaluation(const Evaluation::Result& result);
std::string EvaluationJson(const Evaluation::Result& result);

}  // namespace triage::router
