#include "daemon/triagectl_learn.h"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "config/config.h"
#include "router/sources/generic/generic_source.h"
#include "router/json_writer.h"
#include "router/model_eval.h"
#include "router/router.h"
#include "router/text_model.h"

namespace triage::ctl {
namespace {

using router::ModelLabel;

constexpr char kTrainUsage[] =
    "usage: triagectl train --label complaint|team|level INPUT.jsonl -o MODEL\n"
    "         [--seed N] [--name NAME] [--l2 A,B,...] [--char-ngrams MIN-MAX|none] [--bucket-bits N]\n"
    "  INPUT.jsonl: one message per line in the shape `route` reads, plus the label:\n"
    "  {\"text\": ..., \"complaint\": true}, {\"text\": ..., \"team\": \"billing\"} or\n"
    "  {\"text\": ..., \"level\": \"urgent\"}. Lines without the label are skipped (and counted).\n";

constexpr char kEvaluateUsage[] =
    "usage: triagectl evaluate --label complaint|team|level (--folds K | --test FILE | --model FILE)\n"
    "         [--config FILE] [--seed N] [--json] [--predictions OUT.jsonl] [training options]\n"
    "         INPUT.jsonl\n"
    "       triagectl evaluate --label L --config FILE [--json] INPUT.jsonl\n"
    "  --folds K: stratified, seeded K-fold cross-validation of a model trained on INPUT;\n"
    "  --test FILE: train on INPUT, test on FILE; --model FILE: test that model on INPUT.\n"
    "  Each prints the model's figures and the routed ones: the config (default: the embedded\n"
    "  one) with that model, as the daemon would decide (complaint and the AUC of urgency).\n"
    "  With only --config: the config's own decisions on INPUT, no training.\n"
    "  --predictions writes one line per example: label, model class and probability, routed\n"
    "  class and urgency.\n";

struct Example {
  router::Message message;
  int label = 0;
};

struct Dataset {
  std::vector<std::string> classes;
  std::vector<Example> examples;
  int skipped = 0;  // lines without the label
};

// The classes of a label: complaint no/yes, the four levels, or the teams found (sorted).
absl::Status ReadLabelled(const std::string& path, ModelLabel label, std::vector<std::string> classes,
                          const router::PayloadLimits& limits, Dataset* out) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  const bool fixed_classes = !classes.empty();  // a model's, or the training set's
  if (label == ModelLabel::kComplaint) classes = {"no", "yes"};
  if (label == ModelLabel::kLevel && !fixed_classes) classes = {"urgent", "high", "normal", "low"};
  const std::string key(router::ModelLabelName(label));
  simdjson::dom::parser parser;
  std::vector<std::pair<router::Message, std::string>> rows;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto message = router::ParseLooseMessage(line, "labelled", limits);
    if (!message.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": ", message.status().message()));
    }
    simdjson::dom::element root;
    if (parser.parse(line).get(root) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": not JSON"));
    }
    simdjson::dom::element value;
    if (root[key].get(value) != simdjson::SUCCESS || value.is_null()) {
      ++out->skipped;
      continue;
    }
    std::string name;
    if (label == ModelLabel::kComplaint) {
      bool b = false;
      int64_t i = 0;
      if (value.get(b) == simdjson::SUCCESS) {
        name = b ? "yes" : "no";
      } else if (value.get(i) == simdjson::SUCCESS && (i == 0 || i == 1)) {
        name = i == 1 ? "yes" : "no";
      } else {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": complaint must be true or false"));
      }
    } else {
      std::string_view s;
      if (value.get(s) != simdjson::SUCCESS || s.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": ", key, " must be a non-empty string"));
      }
      name = std::string(s);
      router::Level level;
      if (label == ModelLabel::kLevel && !router::ParseLevel(name, &level)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", number, ": level must be urgent, high, normal or low"));
      }
    }
    if (message->id.empty()) message->id = absl::StrCat("line-", number);
    rows.emplace_back(*std::move(message), std::move(name));
  }
  if (label == ModelLabel::kTeam && classes.empty()) {
    std::set<std::string> teams;
    for (const auto& row : rows) teams.insert(row.second);
    classes.assign(teams.begin(), teams.end());
  }
  if (label == ModelLabel::kLevel && !fixed_classes) {
    // The levels that occur, most urgent first: a team that never labels "urgent" trains on three.
    std::erase_if(classes, [&](const std::string& level) {
      return std::none_of(rows.begin(), rows.end(), [&](const auto& row) { return row.second == level; });
    });
  }
  out->classes = classes;
  for (auto& [message, name] : rows) {
    const auto at = std::find(classes.begin(), classes.end(), name);
    if (at == classes.end()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", key, " '", name, "' is not among the model's classes"));
    }
    out->examples.push_back({std::move(message), static_cast<int>(at - classes.begin())});
  }
  return absl::OkStatus();
}

std::vector<router::LabelledText> Texts(const std::vector<Example>& examples) {
  std::vector<router::LabelledText> texts;
  texts.reserve(examples.size());
  for (const Example& e : examples) texts.push_back({e.message.text, e.label});
  return texts;
}

// Options shared by train and evaluate. Returns false (after printing why) on a bad value.
bool ParseTrainingOption(int argc, char** argv, int* i, router::TrainOptions* options, bool* known) {
  const std::string arg = argv[*i];
  *known = true;
  if (*i + 1 >= argc) {
    *known = arg == "--seed" || arg == "--l2" || arg == "--char-ngrams" || arg == "--bucket-bits" ||
             arg == "--nb-scaling";
    if (*known) std::fprintf(stderr, "triagectl: %s needs a value\n", arg.c_str());
    return !*known;
  }
  const std::string value = argv[*i + 1];
  if (arg == "--seed") {
    if (!absl::SimpleAtoi(value, &options->seed)) {
      std::fprintf(stderr, "triagectl: --seed must be a non-negative integer\n");
      return false;
    }
  } else if (arg == "--l2") {
    options->l2_grid.clear();
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      double l2 = 0;
      if (!absl::SimpleAtod(part, &l2) || !(l2 > 0 && l2 <= 1e6)) {
        std::fprintf(stderr, "triagectl: --l2 takes positive numbers, comma-separated\n");
        return false;
      }
      options->l2_grid.push_back(l2);
    }
  } else if (arg == "--char-ngrams") {
    int min = 0, max = 0;
    const std::vector<std::string> parts = absl::StrSplit(value, '-');
    if (value == "none") {
      options->features.char_max = 0;
    } else if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &min) && absl::SimpleAtoi(parts[1], &max) &&
               min >= 1 && max <= 8 && min <= max) {
      options->features.char_min = min;
      options->features.char_max = max;
    } else {
      std::fprintf(stderr, "triagectl: --char-ngrams is MIN-MAX (1-8) or none\n");
      return false;
    }
  } else if (arg == "--nb-scaling") {
    if (value != "on" && value != "off") {
      std::fprintf(stderr, "triagectl: --nb-scaling is on or off\n");
      return false;
    }
    options->nb_scaling = value == "on";
  } else if (arg == "--bucket-bits") {
    if (!absl::SimpleAtoi(value, &options->features.bucket_bits) || options->features.bucket_bits < 10 ||
        options->features.bucket_bits > 26) {
      std::fprintf(stderr, "triagectl: --bucket-bits must be between 10 and 26\n");
      return false;
    }
  } else {
    *known = false;
    return true;
  }
  ++*i;
  return true;
}

// The command line of train and evaluate: the training options, the flags with a value in
// `values`, the switches in `switches`, and one positional INPUT. False (usage printed) on
// anything else.
bool ParseCommandLine(int argc, char** argv, const std::map<std::string, std::string*>& values,
                      const std::map<std::string, bool*>& switches, router::TrainOptions* options,
                      std::string* input, const char* usage) {
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    bool known = false;
    if (!ParseTrainingOption(argc, argv, &i, options, &known)) return false;
    if (known) continue;
    if (const auto value = values.find(arg); value != values.end() && i + 1 < argc) {
      *value->second = argv[++i];
    } else if (const auto flag = switches.find(arg); flag != switches.end()) {
      *flag->second = true;
    } else if (input->empty() && !arg.empty() && arg[0] != '-') {
      *input = arg;
    } else {
      std::fputs(usage, stderr);
      return false;
    }
  }
  return true;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int TrainCommand(int argc, char** argv) {
  std::string label_name, input, output, name;
  router::TrainOptions options;
  if (!ParseCommandLine(argc, argv, {{"--label", &label_name}, {"-o", &output}, {"--name", &name}}, {}, &options,
                        &input, kTrainUsage)) {
    return 2;
  }
  ModelLabel label;
  if (input.empty() || output.empty() || !router::ParseModelLabel(label_name, &label)) {
    std::fputs(kTrainUsage, stderr);
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  Dataset data;
  if (auto s = ReadLabelled(input, label, {}, router::PayloadLimits{}, &data); !s.ok()) {
    std::fprintf(stderr, "triagectl: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  router::ModelInfo info;
  info.label = label;
  info.classes = data.classes;
  info.name = name.empty() ? output.substr(output.find_last_of('/') + 1) : name;
  auto model = router::TextModel::Train(Texts(data.examples), info, options);
  if (!model.ok()) {
    std::fprintf(stderr, "triagectl: %s: %s\n", input.c_str(), std::string(model.status().message()).c_str());
    return 1;
  }
  const std::string bytes = (*model)->Serialize();
  const std::string temporary = output + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "triagectl: cannot write %s\n", temporary.c_str());
      return 1;
    }
  }
  // Whole or nothing: a daemon reloading never sees half a model.
  if (std::rename(temporary.c_str(), output.c_str()) != 0) {
    std::fprintf(stderr, "triagectl: cannot rename %s to %s: %s\n", temporary.c_str(), output.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const router::ModelInfo& trained = (*model)->info();
  std::string counts;
  for (size_t c = 0; c < trained.classes.size(); ++c) {
    absl::StrAppend(&counts, c == 0 ? "" : ", ", trained.classes[c], " ", trained.class_counts[c]);
  }
  std::printf("%s: %s model from %lld examples (%s; %d lines without the label skipped)\n", output.c_str(),
              std::string(router::ModelLabelName(label)).c_str(), static_cast<long long>(trained.examples),
              counts.c_str(), data.skipped);
  std::printf("  l2 %g, %s%zu weighted features, %zu bytes, trained in %.1f s\n", trained.l2,
              (*model)->binary() ? absl::StrFormat("threshold %.3f, ", trained.threshold).c_str() : "",
              (*model)->stored_buckets(), bytes.size(), Seconds(start));
  return 0;
}

namespace {

// The config's decision for one message, as an evaluated class and the score for AUC.
struct Routed {
  int predicted;
  std::vector<double> scores;
};

Routed RoutedDecision(ModelLabel label, const std::vector<std::string>& classes, const router::RoutedMessage& r) {
  const router::Triage& t = r.triage;
  if (label == ModelLabel::kComplaint) {
    return {t.complaint ? 1 : 0, {100.0 - t.urgency, static_cast<double>(t.urgency)}};
  }
  const std::string name = label == ModelLabel::kTeam ? t.team : std::string(router::LevelName(t.level));
  const auto at = std::find(classes.begin(), classes.end(), name);
  Routed out{static_cast<int>(at - classes.begin()), std::vector<double>(classes.size(), 0.0)};
  if (at != classes.end()) out.scores[out.predicted] = 1;
  return out;
}


}  // namespace

int EvaluateCommand(int argc, char** argv) {
  std::string label_name, input, test_path, model_path, config_path, predictions_path, folds_text;
  int folds = 0;
  bool json = false;
  router::TrainOptions options;
  if (!ParseCommandLine(argc, argv,
                        {{"--label", &label_name},
                         {"--folds", &folds_text},
                         {"--test", &test_path},
                         {"--model", &model_path},
                         {"--config", &config_path},
                         {"--predictions", &predictions_path}},
                        {{"--json", &json}}, &options, &input, kEvaluateUsage)) {
    return 2;
  }
  if (!folds_text.empty() && (!absl::SimpleAtoi(folds_text, &folds) || folds < 2 || folds > 100)) {
    std::fprintf(stderr, "triagectl: --folds must be between 2 and 100\n");
    return 2;
  }
  ModelLabel label;
  const int modes = (folds > 0) + !test_path.empty() + !model_path.empty();
  if (input.empty() || !router::ParseModelLabel(label_name, &label) || modes > 1 ||
      (modes == 0 && config_path.empty())) {
    std::fputs(kEvaluateUsage, stderr);
    return 2;
  }
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "triagectl: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  const auto config = config_path.empty() ? config::LoadConfigString(config::DefaultConfigYaml(), "<embedded>")
                                          : config::LoadConfigFile(config_path);
  if (!config.ok()) return fail(config.status());
  const auto triager = router::Triager::Create(config->scoring, config->routing);
  if (!triager.ok()) return fail(triager.status());

  Dataset data;
  if (auto s = ReadLabelled(input, label, {}, config->server.payload, &data); !s.ok()) return fail(s);
  std::shared_ptr<const router::TextModel> given;
  if (!model_path.empty()) {
    auto model = config::LoadModelFile(model_path, label);
    if (!model.ok()) return fail(model.status());
    given = *model;
    if (label == ModelLabel::kTeam) {
      data = Dataset{};
      if (auto s = ReadLabelled(input, label, given->info().classes, config->server.payload, &data); !s.ok()) {
        return fail(s);
      }
    }
  }
  // The config may route to any of its teams, or to any level: evaluate over the union.
  std::vector<std::string> routed_classes = data.classes;
  std::vector<std::string> possible = config->routing.teams;
  if (label == ModelLabel::kLevel) possible = {"urgent", "high", "normal", "low"};
  if (label != ModelLabel::kComplaint) {
    for (const std::string& name : possible) {
      if (std::find(routed_classes.begin(), routed_classes.end(), name) == routed_classes.end()) {
        routed_classes.push_back(name);
      }
    }
  }
  router::Evaluation model_eval(data.classes), routed_eval(routed_classes);
  std::ofstream predictions;
  if (!predictions_path.empty()) {
    predictions.open(predictions_path, std::ios::trunc);
    if (!predictions) return fail(absl::NotFoundError(absl::StrCat("cannot write ", predictions_path)));
  }

  const absl::Time now = absl::UnixEpoch();

  // Scores `tests` with `model` (null: the config as it is) into both evaluations.
  auto score = [&](const std::shared_ptr<const router::TextModel>& model, const std::vector<const Example*>& tests) {
    std::shared_ptr<const router::Triager> with_model = *triager;
    if (model != nullptr) {
      std::optional<router::ScoringModel> complaint = config->scoring.model;
      std::optional<router::RoutingModel> team = config->routing.model;
      if (label == ModelLabel::kComplaint) {
        if (!complaint) complaint.emplace();
        complaint->model = model;
        complaint->name = model->info().name;
      } else if (label == ModelLabel::kTeam) {
        team = router::RoutingModel{model, model->info().name};
      }
      auto swapped = (*triager)->WithModels(complaint, team);
      if (!swapped.ok()) return swapped.status();
      with_model = *swapped;
    }
    for (const Example* e : tests) {
      router::JsonWriter line;
      line.BeginObject().Key("id").String(e->message.id).Key("text").String(e->message.text);
      line.Key("label").String(data.classes[e->label]);
      if (model != nullptr) {
        const router::Prediction p = model->Predict(e->message.text);
        model_eval.Add(e->label, p.best, p.probability);
        line.Key("model").String(data.classes[p.best]).Key("probability").Double(p.Confidence());
      }
      const router::RoutedMessage routed = with_model->Triage(e->message, now);
      const Routed decision = RoutedDecision(label, routed_classes, routed);
      if (decision.predicted >= static_cast<int>(routed_classes.size())) {
        return absl::InvalidArgumentError("the config routed to a team outside the evaluated classes");
      }
      routed_eval.Add(e->label, decision.predicted, decision.scores);
      if (predictions.is_open()) {
        line.Key("routed").String(routed_classes[decision.predicted]).Key("urgency").Int(routed.triage.urgency);
        predictions << line.EndObject().Take() << '\n';
      }
    }
    return absl::OkStatus();
  };

  const auto start = std::chrono::steady_clock::now();
  router::ModelInfo info;
  info.label = label;
  info.classes = data.classes;
  std::string how;
  if (folds > 0) {
    std::vector<int> labels;
    for (const Example& e : data.examples) labels.push_back(e.label);
    const std::vector<int> fold = router::StratifiedFolds(labels, folds, options.seed);
    for (int f = 0; f < folds; ++f) {
      std::vector<router::LabelledText> train;
      std::vector<const Example*> tests;
      for (size_t i = 0; i < data.examples.size(); ++i) {
        if (fold[i] == f) {
          tests.push_back(&data.examples[i]);
        } else {
          train.push_back({data.examples[i].message.text, data.examples[i].label});
        }
      }
      info.name = absl::StrCat("fold-", f + 1);
      auto model = router::TextModel::Train(train, info, options);
      if (!model.ok()) return fail(model.status());
      if (auto s = score(*model, tests); !s.ok()) return fail(s);
    }
    how = absl::StrFormat("%d-fold stratified cross-validation, seed %d", folds, options.seed);
  } else if (!test_path.empty()) {
    Dataset test;
    if (auto s = ReadLabelled(test_path, label, data.classes, config->server.payload, &test); !s.ok()) return fail(s);
    info.name = input.substr(input.find_last_of('/') + 1);
    auto model = router::TextModel::Train(Texts(data.examples), info, options);
    if (!model.ok()) return fail(model.status());
    std::vector<const Example*> tests;
    for (const Example& e : test.examples) tests.push_back(&e);
    if (auto s = score(*model, tests); !s.ok()) return fail(s);
    how = absl::StrCat("trained on ", input, ", tested on ", test_path);
  } else {
    std::vector<const Example*> tests;
    for (const Example& e : data.examples) tests.push_back(&e);
    if (auto s = score(given, tests); !s.ok()) return fail(s);
    how = given != nullptr ? absl::StrCat("model ", model_path, " on ", input) : absl::StrCat("config as it is on ", input);
  }
  const std::string config_name = config_path.empty() ? "the embedded default config" : config_path;
  if (json) {
    router::JsonWriter w;
    w.BeginObject().Key("label").String(label_name).Key("method").String(how).Key("seconds").Double(Seconds(start));
    if (modes > 0) w.Key("model").Raw(router::EvaluationJson(model_eval.Compute()));
    w.Key("routed").Raw(router::EvaluationJson(routed_eval.Compute())).EndObject();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("%s: %s (%zu examples, %d without the label skipped, %.1f s)\n", label_name.c_str(), how.c_str(),
                data.examples.size(), data.skipped, Seconds(start));
    if (modes > 0) std::printf("== model alone\n%s", router::FormatEvaluation(model_eval.Compute()).c_str());
    std::printf("== routed by %s%s\n%s", config_name.c_str(),
                label == ModelLabel::kComplaint ? " (AUC of urgency)" : "",
                router::FormatEvaluation(routed_eval.Compute()).c_str());
  }
  return 0;
}

}  // namespace triage::ctl
