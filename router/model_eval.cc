#include "router/model_eval.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "router/json_writer.h"

namespace triage::router {

std::vector<int> StratifiedFolds(const std::vector<int>& labels, int folds, uint64_t seed) {
  std::vector<int> fold(labels.size(), 0);
  if (labels.empty() || folds < 1) return fold;
  std::mt19937_64 random(seed);
  const int classes = *std::max_element(labels.begin(), labels.end()) + 1;
  int next = 0;
  for (int c = 0; c < classes; ++c) {
    std::vector<size_t> of_class;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] == c) of_class.push_back(i);
    }
    // Fisher-Yates with the engine's raw output: the same on every platform for a seed.
    for (size_t i = of_class.size(); i > 1; --i) std::swap(of_class[i - 1], of_class[random() % i]);
    for (size_t i : of_class) fold[i] = next++ % folds;
  }
  return fold;
}

double RocAuc(std::vector<std::pair<double, int>> scored) {
  std::sort(scored.begin(), scored.end());
  double positives = 0, rank_sum = 0;
  for (size_t i = 0; i < scored.size();) {
    size_t j = i;
    while (j < scored.size() && scored[j].first == scored[i].first) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;  // mean of ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (scored[k].second) {
        positives += 1;
        rank_sum += rank;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(scored.size()) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

Evaluation::Evaluation(std::vector<std::string> classes)
    : classes_(std::move(classes)),
      confusion_(classes_.size(), std::vector<int64_t>(classes_.size(), 0)),
      scored_(classes_.size()) {}

void Evaluation::Add(int actual, int predicted, const std::vector<double>& scores) {
  ++confusion_[actual][predicted];
  for (size_t k = 0; k < classes_.size() && k < scores.size(); ++k) {
    scored_[k].emplace_back(scores[k], actual == static_cast<int>(k) ? 1 : 0);
  }
}

Evaluation::Result Evaluation::Compute() const {
  Result r;
  r.classes = classes_;
  r.confusion = confusion_;
  const size_t n = classes_.size();
  int64_t correct = 0;
  for (size_t a = 0; a < n; ++a) {
    for (size_t p = 0; p < n; ++p) {
      r.total += confusion_[a][p];
      if (a == p) correct += confusion_[a][p];
    }
  }
  r.accuracy = r.total > 0 ? static_cast<double>(correct) / r.total : 0;
  for (size_t k = 0; k < n; ++k) {
    int64_t predicted = 0, actual = 0;
    for (size_t i = 0; i < n; ++i) {
      predicted += confusion_[i][k];
      actual += confusion_[k][i];
    }
    const double tp = static_cast<double>(confusion_[k][k]);
    const double precision = predicted > 0 ? tp / predicted : 0;
    const double recall = actual > 0 ? tp / actual : 0;
    r.precision.push_back(precision);
    r.recall.push_back(recall);
    r.f1.push_back(precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0);
    r.macro_f1 += r.f1.back() / static_cast<double>(n);
  }
  if (n == 2) {
    r.auc = RocAuc(scored_[1]);
  } else {
    for (size_t k = 0; k < n; ++k) r.auc += RocAuc(scored_[k]) / static_cast<double>(n);
  }
  return r;
}

std::string FormatEvaluation(const Evaluation::Result& r) {
  std::string out = absl::StrFormat("examples %d  accuracy %.1f%%  macro-F1 %.1f  ROC AUC %.3f\n", r.total,
                                    100 * r.accuracy, 100 * r.macro_f1, r.auc);
  absl::StrAppendFormat(&out, "%-16s %9s %9s %9s %9s\n", "CLASS", "PRECISION", "RECALL", "F1", "SUPPORT");
  for (size_t k = 0; k < r.classes.size(); ++k) {
    int64_t support = 0;
    for (int64_t v : r.confusion[k]) support += v;
    absl::StrAppendFormat(&out, "%-16s %8.1f%% %8.1f%% %9.1f %9d\n", r.classes[k], 100 * r.precision[k],
                          100 * r.recall[k], 100 * r.f1[k], support);
  }
  absl::StrAppend(&out, "confusion (rows: actual, columns: predicted)\n");
  absl::StrAppendFormat(&out, "%-16s", "");
  for (const std::string& c : r.classes) absl::StrAppendFormat(&out, " %9s", c.substr(0, 9));
  absl::StrAppend(&out, "\n");
  for (size_t a = 0; a < r.classes.size(); ++a) {
    absl::StrAppendFormat(&out, "%-16s", r.classes[a]);
    for (int64_t v : r.confusion[a]) absl::StrAppendFormat(&out, " %9d", v);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string EvaluationJson(const Evaluation::Result& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("examples").Int(r.total);
  w.Key("accuracy").Double(r.accuracy);
  w.Key("macro_f1").Double(r.macro_f1);
  w.Key("roc_auc").Double(r.auc);
  w.Key("classes").BeginArray();
  for (size_t k = 0; k < r.classes.size(); ++k) {
    int64_t support = 0;
    for (int64_t v : r.confusion[k]) support += v;
    w.BeginObject().Key("name").String(r.classes[k]).Key("precision").Double(r.precision[k]);
    w.Key("recall").Double(r.recall[k]).Key("f1").Double(r.f1[k]).Key("support").Int(support).EndObject();
  }
  w.EndArray();
  w.Key("confusion").BeginArray();
  for (const auto& row : r.confusion) {
    w.BeginArray();
    for (int64_t v : row) w.Int(v);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return w.Take();
}

}  // namespace triage::router
