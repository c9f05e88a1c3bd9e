#include "daemon/journal.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace triage::daemon {

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    case spdlog::level::debug:
    case spdlog::level::trace: return 7;
    case spdlog::level::off:
    case spdlog::level::n_levels: break;
  }
  return 6;
}

namespace {

bool IsKeyChar(char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_'; }

// Appends the key=value pairs of `message` as fields, in the order they appear.
void AppendPairs(std::string_view message, std::vector<std::string>* fields) {
  int pairs = 0;
  size_t i = 0;
  while (i < message.size() && pairs < kMaxJournalPairs) {
    while (i < message.size() && message[i] == ' ') ++i;
    const size_t key_start = i;
    while (i < message.size() && IsKeyChar(message[i])) ++i;
    const size_t key_end = i;
    if (key_end == key_start || i >= message.size() || message[i] != '=' ||
        !absl::ascii_isalpha(message[key_start])) {
      while (i < message.size() && message[i] != ' ') ++i;  // not a pair: skip the word
      continue;
    }
    ++i;  // '='
    std::string value;
    if (i < message.size() && message[i] == '"') {
      // A quoted value runs to the next unescaped quote; \" and \\ are unescaped.
      for (++i; i < message.size() && message[i] != '"'; ++i) {
        if (message[i] == '\\' && i + 1 < message.size()) ++i;
        value.push_back(message[i]);
      }
      if (i < message.size()) ++i;
    } else {
      const size_t value_start = i;
      while (i < message.size() && message[i] != ' ') ++i;
      value.assign(message.substr(value_start, i - value_start));
    }
    fields->push_back(absl::StrCat(absl::AsciiStrToUpper(std::string(message.substr(key_start, key_end - key_start))),
                                   "=", value));
    ++pairs;
  }
}

}  // namespace

std::vector<std::string> JournalFields(spdlog::level::level_enum level, std::string_view message,
                                       std::string_view identifier) {
  std::vector<std::string> fields;
  fields.push_back("MESSAGE=" + std::string(message));
  fields.push_back(absl::StrCat("PRIORITY=", JournalPriority(level)));
  fields.push_back("SYSLOG_IDENTIFIER=" + std::string(identifier));
  AppendPairs(message, &fields);
  return fields;
}

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  const std::vector<std::string> fields =
      JournalFields(msg.level, std::string_view(msg.payload.data(), msg.payload.size()), identifier_);
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const std::string& field : fields) {
    iov.push_back({const_cast<char*>(field.data()), field.size()});
  }
  // A journal that refuses a line must not stop the daemon: the line is lost, nothing else.
  sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

}  // namespace triage::daemon
