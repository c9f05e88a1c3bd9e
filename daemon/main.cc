// triaged: receives social-network webhooks, triages them and delivers them to helpdesks.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "config/config.h"
#include "daemon/app.h"
#include "daemon/journal.h"
#include "daemon/reload.h"

namespace {

constexpr char kUsage[] =
    "usage: triaged [--config FILE] [--ports-file FILE]   run (default: the embedded config)\n"
    "       triaged --check-config FILE [--credentials-dir DIR]\n"
    "                                                     validate a config and exit; DIR holds\n"
    "                                                     the unit's credentials when run outside\n"
    "                                                     it (/etc/triaged/credentials)\n"
    "       triaged --reload PID                          SIGHUP the daemon PID and wait for the\n"
    "                                                     outcome (systemd's ExecReload=): exit 0\n"
    "                                                     applied, 1 refused (reasons on stderr)\n"
    "       triaged --print-default-config                print the embedded config\n"
    "       triaged --version\n";

// The start compiles the patterns once, for its pipeline (App::Start), not here too.
const triage::config::LoadOptions kStart{.compile_patterns = false};

absl::StatusOr<triage::config::Config> Load(const std::string& path) {
  if (path.empty()) {
    return triage::config::LoadConfigString(triage::config::DefaultConfigYaml(), "<embedded default>", kStart);
  }
  return triage::config::LoadConfigFile(path, kStart);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, ports_file, check_path, credentials_dir, reload_pid;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "triaged: %s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(2);
      }
      *out = argv[++i];
    };
    if (arg == "--config") {
      value(&config_path);
    } else if (arg == "--ports-file") {
      value(&ports_file);
    } else if (arg == "--check-config") {
      value(&check_path);
    } else if (arg == "--credentials-dir") {
      value(&credentials_dir);
    } else if (arg == "--reload") {
      value(&reload_pid);
    } else if (arg == "--print-default-config") {
      std::cout << triage::config::DefaultConfigYaml();
      return 0;
    } else if (arg == "--version") {
      std::printf("triaged %s\n", TRIAGED_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "triaged: unknown argument %s\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }

  if (!reload_pid.empty()) {
    int pid = 0;
    if (!absl::SimpleAtoi(reload_pid, &pid) || pid <= 1) {
      std::fprintf(stderr, "triaged: --reload needs the daemon's pid, not '%s'\n", reload_pid.c_str());
      return 2;
    }
    // systemd gives a reload 90 s by default (TimeoutStartSec); the daemon answers in about one.
    return triage::daemon::RequestReload(pid, triage::daemon::RuntimeDirectory(), absl::Seconds(80));
  }
  if (!credentials_dir.empty() && check_path.empty()) {
    std::fprintf(stderr, "triaged: --credentials-dir goes with --check-config\n%s", kUsage);
    return 2;
  }
  if (!check_path.empty()) {
    const auto config = triage::config::LoadConfigFile(check_path, {.credentials_dir = credentials_dir});
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    std::printf("%s: ok\n", check_path.c_str());
    return 0;
  }

  auto config = Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  // One line per event: to the journal with its priority and fields when systemd connected
  // stderr to it, else on stderr with a time and a level.
  std::shared_ptr<spdlog::logger> logger;
  if (triage::daemon::StderrIsJournal()) {
    logger = std::make_shared<spdlog::logger>("triaged", std::make_shared<triage::daemon::JournalSink>("triaged"));
  } else {
    logger = spdlog::stderr_logger_mt("triaged");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  if (config_path.empty()) spdlog::warn("event=default_config note=\"running on the embedded default config\"");

  triage::daemon::App app(*std::move(config), {config_path, ports_file, triage::daemon::RuntimeDirectory()});
  if (const absl::Status started = app.Start(); !started.ok()) {
    spdlog::critical("event=start_failed error=\"{}\"", std::string(started.message()));
    return 1;
  }
  return app.Run();
}
