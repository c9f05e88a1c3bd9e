#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct hs_database;

namespace triage::router {

// Many term patterns compiled once into one Hyperscan database and run in a single pass over
// a text that FoldForMatching prepared. A term is a word or a phrase, folded the same way
// (so "Can’t  log in" and "cant log in" are one term), matched on word boundaries; a trailing
// '*' matches any word ending ("refund*" matches "refunded"). Each term or regex reports
// once, at the end of its first occurrence.
//
// Immutable after Build and safe to share between threads: scanning uses per-thread scratch
// space, allocated on a thread's first scan and reused, so a scan allocates nothing but the
// hits it reports.
class Matcher {
 public:
  struct Hit {
    int term;    // index into the terms given to Build
    size_t end;  // byte offset just past the match in the scanned text
  };

  // InvalidArgument naming the term when one cannot be compiled.
  static absl::StatusOr<std::shared_ptr<const Matcher>> Build(const std::vector<std::string>& terms);
  // The same over raw Hyperscan regular expressions (case-insensitive), for rule conditions.
  static absl::StatusOr<std::shared_ptr<const Matcher>> BuildRegexes(
      const std::vector<std::string>& regexes);
  ~Matcher();

  // Appends the hits in `folded_text`, in the order Hyperscan reports them (by end offset).
  void Scan(absl::string_view folded_text, std::vector<Hit>* hits) const;
  size_t size() const { return size_; }

  // The Hyperscan expression a term compiles to (exposed for tests and error messages).
  static std::string Expression(absl::string_view term);

 private:
  Matcher() = default;
  static absl::StatusOr<std::shared_ptr<const Matcher>> Compile(
      const std::vector<std::string>& expressions, const std::vector<std::string>& shown,
      unsigned flags);
  hs_database* database_ = nullptr;
  uint64_t id_ = 0;  // process-unique, for the per-thread scratch bookkeeping
  size_t size_ = 0;
};

}  // namespace triage::router
