// Logging to the systemd journal with real priorities and the line's key=value pairs as fields.
//
// Under systemd, stderr is a stream to journald, which gives every line PRIORITY=6 and its own
// timestamp. When JOURNAL_STREAM names our stderr (systemd.exec(5)), main() logs through
// JournalSink instead: `journalctl -p err` finds the errors, and `journalctl EVENT=ready` or
// `DESTINATION=zendesk` selects lines by their fields. Elsewhere the text lines stay.
#ifndef TRIAGE_DAEMON_JOURNAL_H_
#define TRIAGE_DAEMON_JOURNAL_H_

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace triage::daemon {

// syslog(3) priority of a spdlog level: critical 2, err 3, warn 4, info 6, debug and trace 7.
int JournalPriority(spdlog::level::level_enum level);

// The journal fields of one line, "NAME=value" each: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, then
// one field per key=value pair of the message (key upper-cased; a "quoted value" unquoted),
// at most kMaxJournalPairs of them. Keys that are not [a-z0-9_]+ are left in MESSAGE only.
inline constexpr int kMaxJournalPairs = 16;
std::vector<std::string> JournalFields(spdlog::level::level_enum level, std::string_view message,
                                       std::string_view identifier);

// True when stderr is the stream JOURNAL_STREAM names (device:inode), i.e. systemd connected it
// to journald.
bool StderrIsJournal();

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string identifier) : identifier_(std::move(identifier)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  const std::string identifier_;
};

}  // namespace triage::daemon

#endif  // TRIAGE_DAEMON_JOURNAL_H_
