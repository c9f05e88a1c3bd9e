// Microbenchmarks of the pure ingest work per message: parse, score and route, serialise.
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <algorithm>
#include <fstream>

#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "router/sources/generic/generic_source.h"
#include "router/router.h"
#include "router/text_model.h"
#include "router/ticket_json.h"

namespace {

const char* const kTexts[] = {
    ("@AcmeSupport my order #A-4471 never arrived and nobody answers the phone. This is the third "
     "time I am asking, please help before I cancel my subscription and write about it."),
    "@AcmeSupport your app has been down for two hours, is there an outage?",
    "Hi, I was charged twice for invoice 88-1203. Can you refund one of them?",
    "Love the new update, thanks team! The dark mode is brilliant.",
    "How much is the enterprise plan? Looking for a demo for 40 seats.",
    "The heater you sold me caught fire last night. This is dangerous. I am talking to a lawyer.",
    "Still waiting for a reply about my cancelled subscription, really disappointed #fail",
    "can't log in since this morning, password reset mail never comes. Account locked out?",
};

std::vector<triage::router::Message> Messages(int n) {
  absl::BitGen random(std::seed_seq{42});
  std::vector<triage::router::Message> out;
  for (int i = 0; i < n; ++i) {
    triage::router::Message m;
    m.source = "generic";
    m.id = absl::StrCat("msg-", i);
    m.platform = "x";
    m.text = kTexts[i % std::size(kTexts)];
    m.author.id = absl::StrCat(absl::Uniform(random, 1, 1'000'000));
    m.author.followers = absl::LogUniform<int64_t>(random, 0, 5'000'000);
    m.author.verified = i % 17 == 0;
    out.push_back(std::move(m));
  }
  return out;
}

const triage::config::Config& DefaultConfig() {
  static const auto config =
      triage::config::LoadConfigString(triage::config::DefaultConfigYaml(), "default");
  return *config;
}

void BM_ScoreAndRoute(benchmark::State& state) {
  const auto& config = DefaultConfig();
  const auto triager = *triage::router::Triager::Create(config.scoring, config.routing);
  const auto messages = Messages(10'000);
  size_t i = 0;
  for (auto _ : state) {
    auto routed = triager->Triage(messages[i++ % messages.size()], absl::UnixEpoch());
    benchmark::DoNotOptimize(routed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ScoreAndRoute);

// Models trained once on the labelled fixtures (tests/fixtures/triage/brand-*.jsonl): what a
// team's own complaint and team models cost per message.
std::shared_ptr<const triage::router::TextModel> TrainedModel(triage::router::ModelLabel label) {
  std::vector<triage::router::LabelledText> examples;
  std::vector<std::string> classes = label == triage::router::ModelLabel::kComplaint
                                         ? std::vector<std::string>{"no", "yes"}
                                         : std::vector<std::string>{"billing", "pr", "sales", "support"};
  for (const char* half : {"brand-tune.jsonl", "brand-test.jsonl"}) {
    std::ifstream in(std::string(TRIAGE_FIXTURES) + "/triage/" + half);
    simdjson::dom::parser parser;
    for (std::string line; std::getline(in, line);) {
      simdjson::dom::element row = parser.parse(line);
      int cls = 0;
      if (label == triage::router::ModelLabel::kComplaint) {
        cls = bool(row["complaint"]) ? 1 : 0;
      } else {
        const std::string team{std::string_view(row["team"])};
        cls = static_cast<int>(std::find(classes.begin(), classes.end(), team) - classes.begin());
        if (cls == static_cast<int>(classes.size())) continue;
      }
      examples.push_back({std::string(std::string_view(row["text"])), cls});
    }
  }
  triage::router::ModelInfo info;
  info.label = label;
  info.classes = classes;
  info.name = "bench";
  return *triage::router::TextModel::Train(examples, info, {});
}

// Score and route with the default config and trained models in it.
void ScoreAndRouteWith(benchmark::State& state, bool team_model) {
  const auto& config = DefaultConfig();
  triage::router::ScoringModel complaint{TrainedModel(triage::router::ModelLabel::kComplaint), "complaint.model"};
  std::optional<triage::router::RoutingModel> team;
  if (team_model) team = triage::router::RoutingModel{TrainedModel(triage::router::ModelLabel::kTeam), "team.model"};
  const auto triager =
      *(*triage::router::Triager::Create(config.scoring, config.routing))->WithModels(complaint, team);
  const auto messages = Messages(10'000);
  size_t i = 0;
  for (auto _ : state) {
    auto routed = triager->Triage(messages[i++ % messages.size()], absl::UnixEpoch());
    benchmark::DoNotOptimize(routed);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_ScoreAndRouteWithComplaintModel(benchmark::State& state) { ScoreAndRouteWith(state, false); }
BENCHMARK(BM_ScoreAndRouteWithComplaintModel);
void BM_ScoreAndRouteWithModels(benchmark::State& state) { ScoreAndRouteWith(state, true); }
BENCHMARK(BM_ScoreAndRouteWithModels);

// The probability alone, and with the word-by-word explanation the reasons carry.
void BM_ModelPredict(benchmark::State& state) {
  const auto model = TrainedModel(triage::router::ModelLabel::kComplaint);
  const auto messages = Messages(64);
  size_t i = 0;
  for (auto _ : state) {
    auto p = model->Predict(messages[i++ % messages.size()].text);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ModelPredict);

void BM_ModelExplain(benchmark::State& state) {
  const auto model = TrainedModel(triage::router::ModelLabel::kComplaint);
  const auto messages = Messages(64);
  size_t i = 0;
  for (auto _ : state) {
    auto e = model->Explain(messages[i++ % messages.size()].text, triage::router::kModelReasonTerms);
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ModelExplain);

void BM_ParseGenericPayload(benchmark::State& state) {
  const std::string body =
      R"({"id":"1900000000000000123","platform":"x","text":"@AcmeSupport my order never arrived and nobody answers","created_at":"2026-03-03T10:02:11Z","author":{"id":"2000000000000000002","handle":"dana_example","name":"Dana Example","followers":48210,"verified":false},"conversation_id":"1900000000000000123","url":"https://x.com/dana_example/status/1900000000000000123"})";
  for (auto _ : state) {
    auto messages = triage::router::ParseGenericPayload(body, "generic", {});
    benchmark::DoNotOptimize(messages);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_ParseGenericPayload);

void BM_TicketJson(benchmark::State& state) {
  const auto& config = DefaultConfig();
  const auto triager = *triage::router::Triager::Create(config.scoring, config.routing);
  const auto routed = triager->Triage(Messages(1)[0], absl::UnixEpoch());
  for (auto _ : state) {
    auto json = triage::router::TicketJson(routed);
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TicketJson);

}  // namespace

BENCHMARK_MAIN();
