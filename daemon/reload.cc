#include "daemon/reload.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace triage::daemon {

std::string RuntimeDirectory() {
  const char* value = std::getenv("RUNTIME_DIRECTORY");
  if (value == nullptr) return "";
  const std::string dirs = value;
  return dirs.substr(0, dirs.find(':'));
}

absl::Status WriteReloadOutcome(const std::string& dir, const ReloadOutcome& outcome) {
  const std::filesystem::path path = std::filesystem::path(dir) / "reload";
  const std::filesystem::path temporary = std::filesystem::path(dir) / "reload.tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << outcome.tag << "\n" << (outcome.applied ? "applied" : "refused") << "\n" << outcome.message << "\n";
    if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", temporary.string()));
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename to ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

std::optional<ReloadOutcome> ReadReloadOutcome(const std::string& dir) {
  std::ifstream in(std::filesystem::path(dir) / "reload");
  if (!in) return std::nullopt;
  ReloadOutcome outcome;
  std::string state;
  if (!std::getline(in, outcome.tag) || !std::getline(in, state)) return std::nullopt;
  outcome.applied = state == "applied";
  std::stringstream rest;
  rest << in.rdbuf();
  outcome.message = rest.str();
  while (!outcome.message.empty() && outcome.message.back() == '\n') outcome.message.pop_back();
  return outcome;
}

int RequestReload(pid_t pid, const std::string& dir, absl::Duration timeout) {
  if (dir.empty()) {
    std::fprintf(stderr,
                 "triaged --reload: RUNTIME_DIRECTORY is not set (systemd sets it from "
                 "RuntimeDirectory=); without it, send SIGHUP and read the log\n");
    return 2;
  }
  const std::optional<ReloadOutcome> before = ReadReloadOutcome(dir);
  if (kill(pid, SIGHUP) != 0) {
    std::fprintf(stderr, "triaged --reload: cannot signal pid %d: %s\n", static_cast<int>(pid),
                 std::strerror(errno));
    return 2;
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::optional<ReloadOutcome> now = ReadReloadOutcome(dir);
    if (now && (!before || now->tag != before->tag)) {
      if (now->applied) {
        std::printf("triaged: config reloaded\n");
        return 0;
      }
      std::fprintf(stderr, "triaged: reload refused, the running config stays: %s\n", now->message.c_str());
      return 1;
    }
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      std::fprintf(stderr, "triaged --reload: pid %d exited before answering\n", static_cast<int>(pid));
      return 2;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::fprintf(stderr, "triaged --reload: no outcome from pid %d within %s\n", static_cast<int>(pid),
               absl::FormatDuration(timeout).c_str());
  return 2;
}

}  // namespace triage::daemon
