// triagectl: offline tools over a triaged config (check-config, route).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "config/config.h"
#include "router/generic_source.h"
#include "router/router.h"
#include "router/ticket_json.h"

namespace {

constexpr char kUsage[] =
    "usage: triagectl check-config FILE\n"
    "       triagectl route --config FILE [INPUT.jsonl]\n"
    "  route reads messages in the generic source's JSON shape, one per line (stdin by\n"
    "  default), and prints each routed ticket as one JSON line with its triage and reasons.\n";

int Route(const std::string& config_path, const std::string& input_path) {
  const auto config = triage::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const triage::router::Triager triager(config->scoring, config->routing);
  std::ifstream file;
  if (!input_path.empty()) {
    file.open(input_path);
    if (!file) {
      std::fprintf(stderr, "triagectl: cannot read %s\n", input_path.c_str());
      return 1;
    }
  }
  std::istream& in = input_path.empty() ? std::cin : file;
  std::string line;
  int line_number = 0, errors = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto messages = triage::router::ParseGenericPayload(line, "triagectl", config->server.payload);
    if (!messages.ok()) {
      std::fprintf(stderr, "line %d: %s\n", line_number, std::string(messages.status().message()).c_str());
      ++errors;
      continue;
    }
    for (triage::router::Message& message : *messages) {
      const auto routed = triager.Triage(std::move(message), absl::Now());
      std::cout << triage::router::TicketJson(routed) << '\n';
    }
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
  if (command == "route" && argc >= 4 && std::string(argv[2]) == "--config") {
    return Route(argv[3], argc > 4 ? argv[4] : "");
  }
  std::fputs(kUsage, stderr);
  return 2;
}
