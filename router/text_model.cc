#include "router/text_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "router/model_eval.h"
#include "router/text.h"

namespace triage::router {
namespace {

bool IsAsciiWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// Length of the UTF-8 sequence that starts with `c`, 0 for a byte that cannot start one.
int Utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

// Length of a whole UTF-8 character at `at`: its lead byte's length when every continuation
// byte is there and is one; 0 for bytes that are not UTF-8.
int CharLength(absl::string_view s, size_t at) {
  const int length = Utf8Length(static_cast<unsigned char>(s[at]));
  if (length == 0 || at + length > s.size()) return 0;
  for (int k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(s[at + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// How a non-ASCII character reads: part of a word (letters of other scripts), a symbol token
// (emoji, dingbats), a currency sign, an ellipsis, or a separator (punctuation, joiners,
// variation selectors, skin tones).
enum class CharClass { kWord, kSymbol, kCurrency, kEllipsis, kSeparator };

CharClass ClassifyNonAscii(absl::string_view ch) {
  const auto b0 = static_cast<unsigned char>(ch[0]);
  const auto b1 = static_cast<unsigned char>(ch[1]);
  if (ch.size() == 2) {
    if (b0 == 0xC2) return b1 == 0xA3 ? CharClass::kCurrency : CharClass::kSeparator;  // £; ¡ « » ©
    return CharClass::kWord;
  }
  if (ch.size() == 3) {
    const auto b2 = static_cast<unsigned char>(ch[2]);
    if (b0 == 0xE2) {
      if (b1 == 0x80) return b2 == 0xA6 ? CharClass::kEllipsis : CharClass::kSeparator;  // … vs — • ZWJ
      if (b1 == 0x82 && b2 == 0xAC) return CharClass::kCurrency;  // €
      if (b1 == 0x81) return CharClass::kSeparator;                // more punctuation
      return CharClass::kSymbol;                                   // ❤ ☹ ✈ ★ ✔ ...
    }
    if (b0 == 0xE3 && b1 == 0x80) return CharClass::kSeparator;    // CJK punctuation
    if (b0 == 0xEF && (b1 == 0xB8 || b1 == 0xBB)) return CharClass::kSeparator;  // VS16, BOM
    return CharClass::kWord;
  }
  // Four bytes: emoji and other pictographs; skin-tone modifiers only modify.
  if (b0 == 0xF0 && b1 == 0x9F && static_cast<unsigned char>(ch[2]) == 0x8F &&
      static_cast<unsigned char>(ch[3]) >= 0xBB) {
    return CharClass::kSeparator;
  }
  return CharClass::kSymbol;
}

// Emoticons, read from the folded text (lower case), mapped to two canonical tokens.
bool ReadEmoticon(absl::string_view rest, size_t* length, const char** token) {
  static constexpr std::pair<absl::string_view, const char*> kEmoticons[] = {
      {":-(", ":("}, {":-/", ":("}, {":(", ":("}, {":/ ", ":("}, {":|", ":("}, {">:(", ":("},
      {":-)", ":)"}, {";-)", ":)"}, {":)", ":)"}, {";)", ":)"}, {":d ", ":)"}, {"<3", ":)"}};
  for (const auto& [text, canonical] : kEmoticons) {
    if (rest.size() >= text.size() && rest.substr(0, text.size()) == text) {
      // ":d " and ":/ " carry a trailing space so that ":do" or "://" are not read as faces.
      *length = text.back() == ' ' ? text.size() - 1 : text.size();
      *token = canonical;
      return true;
    }
  }
  if (rest == ":d" || rest == ":/") {
    *length = 2;
    *token = rest == ":d" ? ":)" : ":(";
    return true;
  }
  return false;
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint32_t Bucket(uint64_t hash, int bits) { return static_cast<uint32_t>(Mix(hash) >> (64 - bits)); }

// One feature occurrence: its bucket, its value, and the phrase it belongs to: token i for
// a unigram and the character n-grams of that token, n + i for the bigram of tokens i, i+1.
struct FeatureRef {
  uint32_t bucket;
  float value;
  uint32_t phrase;
};

// Turns a text into weighted features. Word features (unigrams, bigrams) and character
// n-grams are two groups, each scaled to unit length (1/sqrt(count)), so that the many
// character n-grams do not drown the few words.
void ExtractFeatures(const ModelTokens& tokens, const FeatureOptions& options, std::vector<FeatureRef>* features) {
  features->clear();
  const auto n = static_cast<uint32_t>(tokens.tokens.size());
  const int bits = options.bucket_bits;
  for (uint32_t i = 0; i < n; ++i) {
    features->push_back({Bucket(HashFeature('w', tokens.tokens[i]), bits), 0, i});
  }
  if (options.word_ngrams >= 2) {
    for (uint32_t i = 0; i + 1 < n; ++i) {
      features->push_back({Bucket(HashFeature('b', tokens.tokens[i], tokens.tokens[i + 1]), bits), 0, n + i});
    }
  }
  const size_t words = features->size();
  if (options.char_max > 0) {
    for (uint32_t i = 0; i < n; ++i) {
      if (!tokens.is_word[i]) continue;
      // The n-grams of "<word>", each hashed as HashFeature('c', ngram) would hash it: FNV is
      // sequential, so one pass from each start yields every length in turn.
      const std::string& word = tokens.tokens[i];
      const size_t size = word.size() + 2;
      auto byte = [&](size_t at) -> unsigned char {
        return at == 0 ? '<' : at == size - 1 ? '>' : static_cast<unsigned char>(word[at - 1]);
      };
      for (size_t start = 0; start + options.char_min <= size; ++start) {
        uint64_t h = kFnvOffset;
        h = (h ^ static_cast<unsigned char>('c')) * kFnvPrime;
        for (size_t len = 1; len <= static_cast<size_t>(options.char_max) && start + len <= size; ++len) {
          h = (h ^ byte(start + len - 1)) * kFnvPrime;
          // The whole wrapped word is the unigram already.
          if (len < static_cast<size_t>(options.char_min) || (start == 0 && len == size)) continue;
          features->push_back({Bucket(h, bits), 0, i});
        }
      }
    }
  }
  const size_t chars = features->size() - words;
  const float word_value = words > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(words))) : 0;
  const float char_value = chars > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(chars))) : 0;
  for (size_t i = 0; i < features->size(); ++i) (*features)[i].value = i < words ? word_value : char_value;
}

// ---- Training -----------------------------------------------------------------------------

// The examples in compact form: each feature is a dense column index.
struct Dataset {
  std::vector<uint32_t> offsets;  // example i: entries [offsets[i], offsets[i+1])
  std::vector<uint32_t> columns;
  std::vector<float> values;
  std::vector<int> labels;
  std::vector<uint32_t> buckets;  // column -> bucket
};

Dataset BuildDataset(const std::vector<LabelledText>& examples, const FeatureOptions& options) {
  Dataset data;
  absl::flat_hash_map<uint32_t, uint32_t> column_of;
  ModelTokens tokens;
  std::vector<FeatureRef> features;
  data.offsets.push_back(0);
  for (const LabelledText& example : examples) {
    TokenizeForModel(example.text, &tokens);
    ExtractFeatures(tokens, options, &features);
    for (const FeatureRef& f : features) {
      auto [it, inserted] = column_of.try_emplace(f.bucket, static_cast<uint32_t>(data.buckets.size()));
      if (inserted) data.buckets.push_back(f.bucket);
      data.columns.push_back(it->second);
      data.values.push_back(f.value);
    }
    data.offsets.push_back(static_cast<uint32_t>(data.columns.size()));
    data.labels.push_back(example.label);
  }
  return data;
}

// Regularised logistic (outputs == 1) or softmax regression on a subset of a dataset. The
// parameters are `outputs` weights per column, then `outputs` biases.
class Objective {
 public:
  // `scale[column]` multiplies every value of that column (NB log-count ratios, or 1).
  Objective(const Dataset& data, const std::vector<uint32_t>& rows, int outputs, double l2,
            const std::vector<double>& scale)
      : data_(data), rows_(rows), outputs_(outputs), l2_(l2), scale_(scale) {}

  size_t size() const { return data_.buckets.size() * outputs_ + outputs_; }

  double Evaluate(const std::vector<double>& w, std::vector<double>* gradient) const {
    const size_t bias = data_.buckets.size() * outputs_;
    gradient->assign(w.size(), 0.0);
    double loss = 0;
    std::vector<double> z(outputs_), g(outputs_);
    for (uint32_t row : rows_) {
      const uint32_t begin = data_.offsets[row], end = data_.offsets[row + 1];
      for (int k = 0; k < outputs_; ++k) z[k] = w[bias + k];
      for (uint32_t e = begin; e < end; ++e) {
        const double* wc = &w[static_cast<size_t>(data_.columns[e]) * outputs_];
        const double x = data_.values[e] * scale_[data_.columns[e]];
        for (int k = 0; k < outputs_; ++k) z[k] += wc[k] * x;
      }
      const int y = data_.labels[row];
      if (outputs_ == 1) {
        // log(1 + exp(-s z)) with s = +1 for the positive class, computed without overflow.
        const double margin = y == 1 ? z[0] : -z[0];
        loss += margin > 0 ? std::log1p(std::exp(-margin)) : -margin + std::log1p(std::exp(margin));
        const double p = 1.0 / (1.0 + std::exp(-z[0]));
        g[0] = p - (y == 1 ? 1.0 : 0.0);
      } else {
        const double top = *std::max_element(z.begin(), z.end());
        double sum = 0;
        for (int k = 0; k < outputs_; ++k) sum += std::exp(z[k] - top);
        loss += top + std::log(sum) - z[y];
        for (int k = 0; k < outputs_; ++k) g[k] = std::exp(z[k] - top) / sum - (k == y ? 1.0 : 0.0);
      }
      for (uint32_t e = begin; e < end; ++e) {
        double* gc = &(*gradient)[static_cast<size_t>(data_.columns[e]) * outputs_];
        const double x = data_.values[e] * scale_[data_.columns[e]];
        for (int k = 0; k < outputs_; ++k) gc[k] += g[k] * x;
      }
      for (int k = 0; k < outputs_; ++k) (*gradient)[bias + k] += g[k];
    }
    for (size_t i = 0; i < bias; ++i) {
      loss += 0.5 * l2_ * w[i] * w[i];
      (*gradient)[i] += l2_ * w[i];
    }
    return loss;
  }

 private:
  const Dataset& data_;
  const std::vector<uint32_t>& rows_;
  int outputs_;
  double l2_;
  const std::vector<double>& scale_;
};

// Naive-Bayes log-count ratios per column (binary labels; Wang & Manning 2012): how much more
// often a feature occurs in positive than in negative texts of `rows`, smoothed by 1. Scaling
// the features by them before the regression lets the L2 penalty favour the informative ones.
// All ones when `enabled` is false or the label is not binary.
std::vector<double> NbScale(const Dataset& data, const std::vector<uint32_t>& rows, int outputs, bool enabled) {
  std::vector<double> scale(data.buckets.size(), 1.0);
  if (!enabled || outputs != 1) return scale;
  std::vector<double> positive(data.buckets.size(), 1.0), negative(data.buckets.size(), 1.0);
  for (uint32_t row : rows) {
    std::vector<double>& counts = data.labels[row] == 1 ? positive : negative;
    for (uint32_t e = data.offsets[row]; e < data.offsets[row + 1]; ++e) counts[data.columns[e]] += 1;
  }
  double positive_total = 0, negative_total = 0;
  for (size_t c = 0; c < scale.size(); ++c) {
    positive_total += positive[c];
    negative_total += negative[c];
  }
  for (size_t c = 0; c < scale.size(); ++c) {
    scale[c] = std::abs(std::log((positive[c] / positive_total) / (negative[c] / negative_total)));
  }
  return scale;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Limited-memory BFGS with a backtracking (Armijo) line search. The objective is convex and
// smooth, so this finds its minimum; the result depends only on the data and options.
std::vector<double> Minimise(const Objective& objective, std::vector<double> w, int max_iterations) {
  constexpr int kMemory = 7;
  std::vector<double> g, g_next, w_next, direction;
  double f = objective.Evaluate(w, &g);
  std::vector<std::vector<double>> s_hist, y_hist;
  std::vector<double> rho_hist;
  const double g0 = std::sqrt(Dot(g, g));
  for (int iteration = 0; iteration < max_iterations; ++iteration) {
    const double gnorm = std::sqrt(Dot(g, g));
    if (gnorm <= 1e-5 * std::max(1.0, g0)) break;
    // Two-loop recursion: direction = -H g.
    direction = g;
    std::vector<double> alpha(s_hist.size());
    for (int i = static_cast<int>(s_hist.size()) - 1; i >= 0; --i) {
      alpha[i] = rho_hist[i] * Dot(s_hist[i], direction);
      for (size_t j = 0; j < direction.size(); ++j) direction[j] -= alpha[i] * y_hist[i][j];
    }
    if (!s_hist.empty()) {
      const double scale = Dot(s_hist.back(), y_hist.back()) / Dot(y_hist.back(), y_hist.back());
      for (double& d : direction) d *= scale;
    } else {
      for (double& d : direction) d /= std::max(1.0, gnorm);
    }
    for (size_t i = 0; i < s_hist.size(); ++i) {
      const double beta = rho_hist[i] * Dot(y_hist[i], direction);
      for (size_t j = 0; j < direction.size(); ++j) direction[j] += s_hist[i][j] * (alpha[i] - beta);
    }
    for (double& d : direction) d = -d;
    double slope = Dot(g, direction);
    if (slope >= 0) {  // not a descent direction: restart from the gradient
      s_hist.clear();
      y_hist.clear();
      rho_hist.clear();
      for (size_t j = 0; j < direction.size(); ++j) direction[j] = -g[j];
      slope = -Dot(g, g);
    }
    double step = 1.0, f_next = 0;
    bool accepted = false;
    for (int tries = 0; tries < 30; ++tries) {
      w_next = w;
      for (size_t j = 0; j < w.size(); ++j) w_next[j] += step * direction[j];
      f_next = objective.Evaluate(w_next, &g_next);
      if (f_next <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;
    std::vector<double> s(w.size()), y(w.size());
    for (size_t j = 0; j < w.size(); ++j) {
      s[j] = w_next[j] - w[j];
      y[j] = g_next[j] - g[j];
    }
    const double sy = Dot(s, y);
    if (sy > 1e-12) {
      if (static_cast<int>(s_hist.size()) == kMemory) {
        s_hist.erase(s_hist.begin());
        y_hist.erase(y_hist.begin());
        rho_hist.erase(rho_hist.begin());
      }
      s_hist.push_back(std::move(s));
      y_hist.push_back(std::move(y));
      rho_hist.push_back(1.0 / sy);
    }
    const double decrease = f - f_next;
    w.swap(w_next);
    g.swap(g_next);
    f = f_next;
    if (decrease <= 1e-9 * std::max(1.0, std::abs(f))) break;
  }
  return w;
}

// Scores of one example under parameters `w` laid out as in Objective.
void ScoreRow(const Dataset& data, const std::vector<double>& w, const std::vector<double>& scale, int outputs,
              uint32_t row, std::vector<double>* probability) {
  const size_t bias = data.buckets.size() * outputs;
  std::vector<double> z(outputs);
  for (int k = 0; k < outputs; ++k) z[k] = w[bias + k];
  for (uint32_t e = data.offsets[row]; e < data.offsets[row + 1]; ++e) {
    const double x = data.values[e] * scale[data.columns[e]];
    for (int k = 0; k < outputs; ++k) z[k] += w[static_cast<size_t>(data.columns[e]) * outputs + k] * x;
  }
  if (outputs == 1) {
    const double p = 1.0 / (1.0 + std::exp(-z[0]));
    *probability = {1 - p, p};
    return;
  }
  const double top = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double v : z) sum += std::exp(v - top);
  probability->resize(outputs);
  for (int k = 0; k < outputs; ++k) (*probability)[k] = std::exp(z[k] - top) / sum;
}

// The threshold on the positive probability that maximises macro-F1 over `scores`.
double BestThreshold(const std::vector<std::pair<double, int>>& scored) {
  std::vector<std::pair<double, int>> sorted = scored;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  int64_t positives = 0;
  for (const auto& s : sorted) positives += s.second;
  const int64_t total = static_cast<int64_t>(sorted.size());
  const int64_t negatives = total - positives;
  double best_f1 = -1, best = 0.5;
  int64_t tp = 0, fp = 0;
  // Predicting positive for the first i entries.
  for (size_t i = 0; i < sorted.size(); ++i) {
    (sorted[i].second ? tp : fp) += 1;
    if (i + 1 < sorted.size() && sorted[i + 1].first == sorted[i].first) continue;
    const int64_t fn = positives - tp, tn = negatives - fp;
    const double f1_pos = tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
    const double f1_neg = tn == 0 ? 0 : 2.0 * tn / (2.0 * tn + fn + fp);
    const double macro = (f1_pos + f1_neg) / 2;
    if (macro > best_f1) {
      best_f1 = macro;
      best = i + 1 < sorted.size() ? (sorted[i].first + sorted[i + 1].first) / 2 : sorted[i].first;
    }
  }
  return std::clamp(best, 0.01, 0.99);
}

// ---- File format --------------------------------------------------------------------------

constexpr char kMagic[8] = {'T', 'R', 'I', 'A', 'G', 'E', 'M', 'L'};
constexpr uint32_t kVersion = 1;

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    out_.append(bytes, sizeof(T));
  }
  void PutString(absl::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void PutRaw(const void* data, size_t size) { out_.append(static_cast<const char*>(data), size); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* value) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(value, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  bool GetString(std::string* s, size_t max) {
    uint32_t size = 0;
    if (!Get(&size) || size > max || in_.size() < size) return false;
    s->assign(in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }
  bool GetRaw(void* data, size_t size) {
    if (in_.size() < size) return false;
    std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  absl::string_view in_;
};

uint64_t Checksum(absl::string_view bytes) { return HashFeature('#', bytes); }

}  // namespace

absl::string_view ModelLabelName(ModelLabel label) {
  switch (label) {
    case ModelLabel::kComplaint:
      return "complaint";
    case ModelLabel::kTeam:
      return "team";
    case ModelLabel::kLevel:
      return "level";
  }
  return "complaint";
}

bool ParseModelLabel(absl::string_view name, ModelLabel* label) {
  for (ModelLabel l : {ModelLabel::kComplaint, ModelLabel::kTeam, ModelLabel::kLevel}) {
    if (name == ModelLabelName(l)) {
      *label = l;
      return true;
    }
  }
  return false;
}

uint64_t HashFeature(char group, absl::string_view a, absl::string_view b) {
  uint64_t h = kFnvOffset;
  auto add = [&h](unsigned char c) {
    h ^= c;
    h *= kFnvPrime;
  };
  add(static_cast<unsigned char>(group));
  for (char c : a) add(static_cast<unsigned char>(c));
  if (!b.empty()) {
    add(0x1F);
    for (char c : b) add(static_cast<unsigned char>(c));
  }
  return h;
}

void TokenizeForModel(absl::string_view text, ModelTokens* out) {
  FoldForMatching(text, &out->folded);
  out->tokens.clear();
  out->is_word.clear();
  const absl::string_view s = out->folded;
  auto emit = [out](absl::string_view token, bool word) {
    out->tokens.emplace_back(token);
    out->is_word.push_back(word);
  };
  std::string word;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const absl::string_view rest = s.substr(i);
    if (c == ' ') {
      ++i;
      continue;
    }
    if (rest.substr(0, 7) == "http://" || rest.substr(0, 8) == "https://" || rest.substr(0, 4) == "www.") {
      while (i < s.size() && s[i] != ' ') ++i;
      emit("<url>", false);
      continue;
    }
    if (c == '@' && i + 1 < s.size() && IsAsciiWordByte(static_cast<unsigned char>(s[i + 1]))) {
      ++i;
      while (i < s.size() && IsAsciiWordByte(static_cast<unsigned char>(s[i]))) ++i;
      emit("@user", false);
      continue;
    }
    if (c == '&') {  // HTML entities as tweets carry them: &amp; &lt; &gt;
      size_t j = i + 1;
      while (j < s.size() && j - i <= 6 && absl::ascii_isalpha(static_cast<unsigned char>(s[j]))) ++j;
      if (j < s.size() && s[j] == ';' && j > i + 1) {
        i = j + 1;
        continue;
      }
    }
    size_t emoticon_length = 0;
    const char* emoticon = nullptr;
    if ((c == ':' || c == ';' || c == '<' || c == '>') && ReadEmoticon(rest, &emoticon_length, &emoticon)) {
      emit(emoticon, false);
      i += emoticon_length;
      continue;
    }
    if (c == '!' || c == '?') {
      size_t j = i;
      bool bang = false, question = false;
      while (j < s.size() && (s[j] == '!' || s[j] == '?')) {
        bang |= s[j] == '!';
        question |= s[j] == '?';
        ++j;
      }
      const bool run = j - i >= 2;
      emit(bang && question ? "?!" : bang ? (run ? "!!" : "!") : (run ? "??" : "?"), false);
      i = j;
      continue;
    }
    if (c == '$') {
      emit("$", false);
      ++i;
      continue;
    }
    if (c == '.' && rest.substr(0, 2) == "..") {
      while (i < s.size() && s[i] == '.') ++i;
      emit("...", false);
      continue;
    }
    // A word: ASCII word bytes and letters of other scripts.
    word.clear();
    bool digits_only = true;
    size_t j = i;
    while (j < s.size()) {
      const auto b = static_cast<unsigned char>(s[j]);
      if (b < 0x80) {
        if (!IsAsciiWordByte(b)) break;
        digits_only &= b >= '0' && b <= '9';
        word.push_back(static_cast<char>(b));
        ++j;
        continue;
      }
      const int length = CharLength(s, j);
      if (length == 0) break;
      if (ClassifyNonAscii(s.substr(j, length)) != CharClass::kWord) break;
      digits_only = false;
      word.append(s.data() + j, length);
      j += length;
    }
    if (!word.empty()) {
      emit(digits_only ? absl::string_view("0") : absl::string_view(word), !digits_only);
      i = j;
      continue;
    }
    if (c < 0x80) {  // other ASCII punctuation separates words
      ++i;
      continue;
    }
    const int length = CharLength(s, i);
    if (length == 0) {  // not UTF-8: skip the byte
      ++i;
      continue;
    }
    const absl::string_view ch = s.substr(i, length);
    switch (ClassifyNonAscii(ch)) {
      case CharClass::kSymbol:
        emit(ch, false);
        break;
      case CharClass::kCurrency:
        emit("$", false);
        break;
      case CharClass::kEllipsis:
        emit("...", false);
        break;
      case CharClass::kWord:
      case CharClass::kSeparator:
        break;
    }
    i += length;
  }
}

// ---- TextModel ----------------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<const TextModel>> TextModel::Train(const std::vector<LabelledText>& examples,
                                                                  ModelInfo info, const TrainOptions& options) {
  const int classes = static_cast<int>(info.classes.size());
  if (classes < 2) return absl::InvalidArgumentError("a model needs at least two classes");
  if (options.features.bucket_bits < 10 || options.features.bucket_bits > 26 ||
      options.features.word_ngrams < 1 || options.features.word_ngrams > 2 ||
      options.features.char_min < 1 || options.features.char_max > 8 ||
      (options.features.char_max > 0 && options.features.char_min > options.features.char_max)) {
    return absl::InvalidArgumentError("feature options out of range");
  }
  std::vector<int64_t> counts(classes, 0);
  for (const LabelledText& e : examples) {
    if (e.label < 0 || e.label >= classes) return absl::InvalidArgumentError("a label is out of range");
    ++counts[e.label];
  }
  for (int c = 0; c < classes; ++c) {
    if (counts[c] == 0) {
      return absl::InvalidArgumentError(absl::StrCat("no example of class '", info.classes[c], "'"));
    }
  }
  if (options.l2_grid.empty()) return absl::InvalidArgumentError("no l2 value to try");
  const int outputs = classes == 2 ? 1 : classes;
  const Dataset data = BuildDataset(examples, options.features);
  std::vector<uint32_t> all(examples.size());
  std::iota(all.begin(), all.end(), 0);

  // Choose the penalty (and, binary, the threshold) from out-of-fold predictions.
  double l2 = options.l2_grid.front();
  std::vector<double> start;
  double threshold = 0.5;
  const int64_t smallest = *std::min_element(counts.begin(), counts.end());
  const int folds = static_cast<int>(std::min<int64_t>(options.inner_folds, smallest));
  if (folds >= 2 && (options.l2_grid.size() > 1 || (outputs == 1 && options.tune_threshold))) {
    const std::vector<int> fold = StratifiedFolds(data.labels, folds, options.seed);
    // Strongest penalty first, each fit starting from the previous one's weights (warm start):
    // the problems are convex, so the start changes the time, not the answer.
    std::vector<double> grid = options.l2_grid;
    std::sort(grid.begin(), grid.end(), std::greater<>());
    std::vector<double> loss(grid.size(), 0.0);
    std::vector<std::vector<std::pair<double, int>>> scored(grid.size());
    std::vector<std::vector<double>> last_fold(grid.size());  // a warm start for the final fit
    for (int f = 0; f < folds; ++f) {
      std::vector<uint32_t> train, test;
      for (size_t i = 0; i < all.size(); ++i) (fold[i] == f ? test : train).push_back(all[i]);
      const std::vector<double> scale = NbScale(data, train, outputs, options.nb_scaling);
      std::vector<double> w;
      for (size_t c = 0; c < grid.size(); ++c) {
        const Objective objective(data, train, outputs, grid[c], scale);
        if (w.empty()) w.assign(objective.size(), 0.0);
        w = Minimise(objective, std::move(w), options.max_iterations);
        if (f == folds - 1) last_fold[c] = w;
        std::vector<double> p;
        for (uint32_t row : test) {
          ScoreRow(data, w, scale, outputs, row, &p);
          loss[c] -= std::log(std::max(p[outputs == 1 ? (data.labels[row] == 1 ? 1 : 0) : data.labels[row]], 1e-12));
          if (outputs == 1) scored[c].emplace_back(p[1], data.labels[row]);
        }
      }
    }
    const size_t best = static_cast<size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin());
    l2 = grid[best];
    if (outputs == 1 && options.tune_threshold) threshold = BestThreshold(scored[best]);
    start = std::move(last_fold[best]);
  }

  const std::vector<double> scale = NbScale(data, all, outputs, options.nb_scaling);
  const Objective objective(data, all, outputs, l2, scale);
  if (start.size() != objective.size()) start.assign(objective.size(), 0.0);
  const std::vector<double> w = Minimise(objective, std::move(start), options.max_iterations);

  std::shared_ptr<TextModel> model(new TextModel());
  info.features = options.features;
  info.l2 = l2;
  info.threshold = threshold;
  info.examples = static_cast<int64_t>(examples.size());
  info.class_counts = counts;
  model->info_ = std::move(info);
  model->outputs_ = outputs;
  const size_t bias = data.buckets.size() * outputs;
  model->bias_.assign(w.begin() + bias, w.end());
  std::vector<float> weights(data.buckets.size() * outputs);
  for (size_t column = 0; column < data.buckets.size(); ++column) {
    for (int k = 0; k < outputs; ++k) {
      weights[column * outputs + k] = static_cast<float>(w[column * outputs + k] * scale[column]);
    }
  }
  model->BuildTable(data.buckets, weights);
  return model;
}

void TextModel::BuildTable(const std::vector<uint32_t>& buckets, const std::vector<float>& weights) {
  // Half full at most: a lookup reads about one slot, and a slot is one cache line or less.
  size_t slots = 16;
  while (slots < buckets.size() * 2) slots *= 2;
  const size_t stride = 1 + static_cast<size_t>(outputs_);
  table_.assign(slots * stride, kEmptySlot);
  slot_mask_ = static_cast<uint32_t>(slots - 1);
  rows_ = buckets.size();
  for (size_t row = 0; row < buckets.size(); ++row) {
    uint32_t slot = static_cast<uint32_t>(Mix(buckets[row])) & slot_mask_;
    while (table_[slot * stride] != kEmptySlot) slot = (slot + 1) & slot_mask_;
    table_[slot * stride] = buckets[row];
    std::memcpy(&table_[slot * stride + 1], &weights[row * outputs_], outputs_ * sizeof(float));
  }
}

const uint32_t* TextModel::Row(uint32_t bucket) const {
  const size_t stride = 1 + static_cast<size_t>(outputs_);
  uint32_t slot = static_cast<uint32_t>(Mix(bucket)) & slot_mask_;
  while (true) {
    const uint32_t* entry = &table_[slot * stride];
    if (*entry == bucket) return entry + 1;
    if (*entry == kEmptySlot) return nullptr;
    slot = (slot + 1) & slot_mask_;
  }
}

void TextModel::Compute(const ModelTokens& tokens, std::vector<double>* z, std::vector<double>* phrases) const {
  thread_local std::vector<FeatureRef> features;
  ExtractFeatures(tokens, info_.features, &features);
  z->assign(bias_.begin(), bias_.end());
  if (phrases != nullptr) phrases->assign(2 * tokens.tokens.size() * outputs_, 0.0);
  for (const FeatureRef& f : features) {
    const uint32_t* row = Row(f.bucket);
    if (row == nullptr) continue;  // a feature no training text had: weight 0
    for (int k = 0; k < outputs_; ++k) {
      float weight;
      std::memcpy(&weight, &row[k], sizeof(weight));
      const double v = static_cast<double>(weight) * f.value;
      (*z)[k] += v;
      if (phrases != nullptr) (*phrases)[f.phrase * outputs_ + k] += v;
    }
  }
}

Prediction TextModel::ToPrediction(const std::vector<double>& z) const {
  Prediction prediction;
  if (outputs_ == 1) {
    const double p = 1.0 / (1.0 + std::exp(-z[0]));
    prediction.probability = {1 - p, p};
    prediction.best = p >= info_.threshold ? 1 : 0;
    return prediction;
  }
  const double top = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double v : z) sum += std::exp(v - top);
  prediction.probability.resize(outputs_);
  for (int k = 0; k < outputs_; ++k) prediction.probability[k] = std::exp(z[k] - top) / sum;
  prediction.best = static_cast<int>(std::max_element(z.begin(), z.end()) - z.begin());
  return prediction;
}

Prediction TextModel::Predict(absl::string_view text) const {
  thread_local ModelTokens tokens;
  TokenizeForModel(text, &tokens);
  return Predict(tokens);
}

Prediction TextModel::Predict(const ModelTokens& tokens) const {
  thread_local std::vector<double> z;
  Compute(tokens, &z, nullptr);
  return ToPrediction(z);
}

Explanation TextModel::Explain(absl::string_view text, size_t limit) const {
  thread_local ModelTokens tokens;
  TokenizeForModel(text, &tokens);
  return Explain(tokens, limit);
}

Explanation TextModel::Explain(const ModelTokens& tokens, size_t limit) const {
  thread_local std::vector<double> z, phrases;
  Compute(tokens, &z, &phrases);
  Explanation out;
  out.prediction = ToPrediction(z);
  const int cls = outputs_ == 1 ? 1 : out.prediction.best;
  // The score explained: binary, the log-odds of the positive class; otherwise the margin of
  // the predicted class over the runner-up. Both are linear in the per-output terms.
  int other = -1;
  if (outputs_ > 1) {
    for (int k = 0; k < outputs_; ++k) {
      if (k != cls && (other < 0 || z[k] > z[other])) other = k;
    }
  }
  auto score = [&](const double* v) { return outputs_ == 1 ? v[0] : v[cls] - v[other]; };
  out.score = score(z.data());
  out.bias = score(bias_.data());
  const size_t n = tokens.tokens.size();
  auto phrase_text = [&](size_t id) {
    return id < n ? tokens.tokens[id] : absl::StrCat(tokens.tokens[id - n], " ", tokens.tokens[id - n + 1]);
  };
  // One term per distinct phrase: a word said twice counts once, with both shares.
  thread_local std::vector<std::pair<double, size_t>> terms;
  thread_local absl::flat_hash_map<std::pair<absl::string_view, absl::string_view>, size_t> seen;
  terms.clear();
  seen.clear();
  for (size_t id = 0; id < 2 * n; ++id) {
    const double weight = score(&phrases[id * outputs_]);
    if (weight == 0) continue;
    const auto key = id < n ? std::make_pair(absl::string_view(tokens.tokens[id]), absl::string_view())
                            : std::make_pair(absl::string_view(tokens.tokens[id - n]),
                                             absl::string_view(tokens.tokens[id - n + 1]));
    const auto [at, inserted] = seen.try_emplace(key, terms.size());
    if (inserted) {
      terms.emplace_back(weight, id);
    } else {
      terms[at->second].first += weight;
    }
  }
  // Biggest magnitude first; ties in text order, so the same text always reads the same.
  std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) {
    return std::abs(a.first) != std::abs(b.first) ? std::abs(a.first) > std::abs(b.first) : a.second < b.second;
  });
  double rest = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    if (i < limit) {
      out.terms.push_back({phrase_text(terms[i].second), terms[i].first});
    } else {
      rest += terms[i].first;
    }
  }
  // What is cut is one "other words" term, so bias plus terms stays the exact score.
  if (terms.size() > limit) out.terms.push_back({"(other words)", rest});
  return out;
}

std::string TextModel::Serialize() const {
  Writer w;
  w.PutRaw(kMagic, sizeof(kMagic));
  w.Put<uint32_t>(kVersion);
  w.Put<uint8_t>(static_cast<uint8_t>(info_.label));
  w.Put<uint32_t>(static_cast<uint32_t>(info_.classes.size()));
  for (const std::string& c : info_.classes) w.PutString(c);
  w.Put<uint8_t>(static_cast<uint8_t>(info_.features.word_ngrams));
  w.Put<uint8_t>(static_cast<uint8_t>(info_.features.char_min));
  w.Put<uint8_t>(static_cast<uint8_t>(info_.features.char_max));
  w.Put<uint8_t>(static_cast<uint8_t>(info_.features.bucket_bits));
  w.Put<double>(info_.l2);
  w.Put<double>(info_.threshold);
  w.Put<int64_t>(info_.examples);
  for (int64_t count : info_.class_counts) w.Put<int64_t>(count);
  w.PutString(info_.name);
  w.Put<uint32_t>(static_cast<uint32_t>(outputs_));
  for (double b : bias_) w.Put<double>(b);
  // Rows sorted by bucket: the same model always writes the same bytes.
  const size_t stride = 1 + static_cast<size_t>(outputs_);
  std::vector<std::pair<uint32_t, size_t>> rows;  // bucket, slot
  for (size_t slot = 0; slot <= slot_mask_; ++slot) {
    if (table_[slot * stride] != kEmptySlot) rows.emplace_back(table_[slot * stride], slot);
  }
  std::sort(rows.begin(), rows.end());
  w.Put<uint32_t>(static_cast<uint32_t>(rows.size()));
  for (const auto& [bucket, slot] : rows) w.Put<uint32_t>(bucket);
  for (const auto& [bucket, slot] : rows) w.PutRaw(&table_[slot * stride + 1], outputs_ * sizeof(float));
  w.Put<uint64_t>(Checksum(w.out()));
  return std::move(w.out());
}

absl::StatusOr<std::shared_ptr<const TextModel>> TextModel::Parse(absl::string_view bytes) {
  auto bad = [](absl::string_view why) { return absl::InvalidArgumentError(absl::StrCat("not a triaged model: ", why)); };
  if (bytes.size() < sizeof(kMagic) + 12 || bytes.substr(0, sizeof(kMagic)) != absl::string_view(kMagic, sizeof(kMagic))) {
    return bad("no model header");
  }
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - sizeof(stored), sizeof(stored));
  if (Checksum(bytes.substr(0, bytes.size() - sizeof(stored))) != stored) return bad("checksum mismatch (truncated or damaged)");
  Reader r(bytes.substr(sizeof(kMagic), bytes.size() - sizeof(kMagic) - sizeof(stored)));
  uint32_t version = 0;
  if (!r.Get(&version)) return bad("truncated");
  if (version != kVersion) {
    return absl::InvalidArgumentError(absl::StrCat("model format version ", version, " (this build reads ", kVersion, ")"));
  }
  std::shared_ptr<TextModel> model(new TextModel());
  ModelInfo& info = model->info_;
  uint8_t label = 0, word_ngrams = 0, char_min = 0, char_max = 0, bits = 0;
  uint32_t classes = 0;
  if (!r.Get(&label) || label > static_cast<uint8_t>(ModelLabel::kLevel)) return bad("unknown label");
  info.label = static_cast<ModelLabel>(label);
  if (!r.Get(&classes) || classes < 2 || classes > 256) return bad("class count out of range");
  info.classes.resize(classes);
  for (std::string& c : info.classes) {
    if (!r.GetString(&c, 256)) return bad("truncated class name");
  }
  if (!r.Get(&word_ngrams) || !r.Get(&char_min) || !r.Get(&char_max) || !r.Get(&bits)) return bad("truncated");
  if (word_ngrams < 1 || word_ngrams > 2 || char_max > 8 || (char_max > 0 && (char_min < 1 || char_min > char_max)) ||
      bits < 10 || bits > 26) {
    return bad("feature options out of range");
  }
  info.features = {word_ngrams, char_min, char_max, bits};
  if (!r.Get(&info.l2) || !r.Get(&info.threshold) || !r.Get(&info.examples)) return bad("truncated");
  if (!(info.threshold > 0 && info.threshold < 1)) return bad("threshold out of range");
  info.class_counts.resize(classes);
  for (int64_t& count : info.class_counts) {
    if (!r.Get(&count)) return bad("truncated");
  }
  if (!r.GetString(&info.name, 4096)) return bad("truncated name");
  uint32_t outputs = 0;
  if (!r.Get(&outputs) || outputs != (classes == 2 ? 1u : classes)) return bad("output count does not match the classes");
  model->outputs_ = static_cast<int>(outputs);
  model->bias_.resize(outputs);
  for (double& b : model->bias_) {
    if (!r.Get(&b) || !std::isfinite(b)) return bad("bad bias");
  }
  uint32_t rows = 0;
  if (!r.Get(&rows) || static_cast<uint64_t>(rows) > (uint64_t{1} << bits)) return bad("row count out of range");
  if (r.remaining() != static_cast<size_t>(rows) * (sizeof(uint32_t) + outputs * sizeof(float))) {
    return bad("size does not match the row count");
  }
  std::vector<uint32_t> buckets(rows);
  std::vector<float> weights(static_cast<size_t>(rows) * outputs);
  r.GetRaw(buckets.data(), rows * sizeof(uint32_t));
  r.GetRaw(weights.data(), weights.size() * sizeof(float));
  for (uint32_t i = 0; i < rows; ++i) {
    if (buckets[i] >= (uint32_t{1} << bits) || (i > 0 && buckets[i] <= buckets[i - 1])) {
      return bad("buckets out of order");
    }
  }
  for (float v : weights) {
    if (!std::isfinite(v)) return bad("a weight is not finite");
  }
  model->BuildTable(buckets, weights);
  return model;
}

}  // namespace triage::router
