// A reload that tells its outcome: `systemctl reload triaged` runs `triaged --reload $MAINPID`,
// which sends SIGHUP and waits for the daemon to write what became of it. A refused config
// makes the command fail with the reasons on stderr, so systemd reports the reload as failed
// and the journal says why. Needs no procps (kill(2) directly).
//
// The daemon writes each outcome to `reload` in its runtime directory ($RUNTIME_DIRECTORY, which
// systemd sets from RuntimeDirectory=), replacing the file atomically:
//   line 1: a tag that differs for every reload ("<pid>:<count>")
//   line 2: "applied" or "refused"
//   rest:   the reasons of a refusal
#ifndef TRIAGE_DAEMON_RELOAD_H_
#define TRIAGE_DAEMON_RELOAD_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace triage::daemon {

struct ReloadOutcome {
  std::string tag;
  bool applied = false;
  std::string message;
};

// The first directory of $RUNTIME_DIRECTORY, or "" when it is not set.
std::string RuntimeDirectory();

absl::Status WriteReloadOutcome(const std::string& dir, const ReloadOutcome& outcome);
std::optional<ReloadOutcome> ReadReloadOutcome(const std::string& dir);

// Sends SIGHUP to `pid` and waits up to `timeout` for a new outcome in `dir`. Returns the exit
// code of `triaged --reload`: 0 applied, 1 refused (reasons on stderr), 2 no answer or no signal.
int RequestReload(pid_t pid, const std::string& dir, absl::Duration timeout);

}  // namespace triage::daemon

#endif  // TRIAGE_DAEMON_RELOAD_H_
