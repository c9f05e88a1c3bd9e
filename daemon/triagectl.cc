// triagectl: offline tools over a triaged config (check-config, route).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "router/generic_source.h"
#include "router/ticket_json.h"
#include "router/router.h"

namespace {

constexpr char kUsage[] =
    "usage: triagectl check-config FILE\n"
    "       triagectl route --config FILE [--explain] [INPUT.jsonl]\n"
    "  route reads one message per line (stdin by default) in the generic source's JSON shape,\n"
    "  of which only \"text\" is required (author.followers, author.verified, platform, kind,\n"
    "  channel, language help), and writes one JSON line per message: urgency, complaint,\n"
    "  reach, priority, level, sla_deadline, categories, team, informed, rule, tags, dropped;\n"
    "  with --explain also the reasons. It needs no running daemon.\n";

std::string RouteLine(const triage::router::RoutedMessage& r, bool explain) {
  triage::router::JsonWriter w;
  w.BeginObject();
  w.Key("id").String(r.message.id);
  triage::router::WriteTriageFields(r, explain, &w);
  w.EndObject();
  return w.Take();
}

int Route(const std::string& config_path, bool explain, const std::string& input_path) {
  const auto config = triage::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const auto triager = triage::router::Triager::Create(config->scoring, config->routing);
  if (!triager.ok()) {
    std::fprintf(stderr, "%s\n", std::string(triager.status().message()).c_str());
    return 1;
  }
  std::ifstream file;
  if (!input_path.empty()) {
    file.open(input_path);
    if (!file) {
      std::fprintf(stderr, "triagectl: cannot read %s\n", input_path.c_str());
      return 1;
    }
  }
  std::istream& in = input_path.empty() ? std::cin : file;
  const absl::Time now = absl::Now();
  std::string line;
  int line_number = 0, errors = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto message = triage::router::ParseLooseMessage(line, "triagectl", config->server.payload);
    if (!message.ok()) {
      std::fprintf(stderr, "line %d: %s\n", line_number, std::string(message.status().message()).c_str());
      ++errors;
      continue;
    }
    if (message->id.empty()) message->id = absl::StrCat("line-", line_number);
    std::cout << RouteLine((*triager)->Triage(*std::move(message), now), explain) << '\n';
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "check-config" && argc == 3) {
    const auto config = triage::config::LoadConfigFile(argv[2]);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    std::printf("%s: ok\n", argv[2]);
    return 0;
  }
  if (command == "route") {
    std::string config_path, input;
    bool explain = false;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
        config_path = argv[++i];
      } else if (std::strcmp(argv[i], "--explain") == 0) {
        explain = true;
      } else if (input.empty() && argv[i][0] != '-') {
        input = argv[i];
      } else {
        std::fputs(kUsage, stderr);
        return 2;
      }
    }
    if (!config_path.empty()) return Route(config_path, explain, input);
  }
  std::fputs(kUsage, stderr);
  return 2;
}
