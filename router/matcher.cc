#include "router/matcher.h"

#include <hs/hs.h>

#include <atomic>

#include "absl/container/flat_hash_set.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "router/text.h"

namespace triage::router {
namespace {

bool IsWordChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Per-thread scratch, grown to fit every database it has been checked against. Hyperscan
// scratch may serve one scan at a time, which a thread guarantees. hs_alloc_scratch costs
// microseconds even when nothing needs to grow, so each thread remembers which matchers (by a
// process-unique id, never reused like an address could be) it has already checked.
hs_scratch_t* ThreadScratch(const hs_database_t* database, uint64_t id) {
  struct Holder {
    hs_scratch_t* scratch = nullptr;
    absl::flat_hash_set<uint64_t> checked;
    ~Holder() {
      if (scratch != nullptr) hs_free_scratch(scratch);
    }
  };
  thread_local Holder holder;
  if (!holder.checked.contains(id)) {
    if (hs_alloc_scratch(database, &holder.scratch) != HS_SUCCESS) return nullptr;
    holder.checked.insert(id);
  }
  return holder.scratch;
}

std::atomic<uint64_t> next_matcher_id{1};

}  // namespace

std::string Matcher::Expression(absl::string_view term) {
  std::string folded;
  FoldForMatching(absl::StripAsciiWhitespace(term), &folded);
  absl::string_view literal = absl::StripAsciiWhitespace(folded);
  const bool prefix = !literal.empty() && literal.back() == '*';
  if (prefix) literal = absl::StripTrailingAsciiWhitespace(literal.substr(0, literal.size() - 1));
  if (literal.empty()) return "";
  std::string out;
  if (IsWordChar(literal.front())) out += "\\b";
  for (const char c : literal) {
    if (IsWordChar(c) || static_cast<unsigned char>(c) >= 0x80) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  // A trailing * leaves the word open ("refund*" matches "refunded").
  if (!prefix && IsWordChar(literal.back())) out += "\\b";
  return out;
}

absl::StatusOr<std::shared_ptr<const Matcher>> Matcher::Build(const std::vector<std::string>& terms) {
  std::vector<std::string> expressions;
  expressions.reserve(terms.size());
  for (const std::string& term : terms) {
    expressions.push_back(Expression(term));
    if (expressions.back().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty term '", term, "'"));
    }
  }
  // Single match per term: the first occurrence is enough evidence, and it keeps a scan
  // linear (leftmost-start tracking made it ten times slower).
  return Compile(expressions, terms, HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
}

absl::StatusOr<std::shared_ptr<const Matcher>> Matcher::BuildRegexes(
    const std::vector<std::string>& regexes) {
  return Compile(regexes, regexes, HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
}

absl::StatusOr<std::shared_ptr<const Matcher>> Matcher::Compile(
    const std::vector<std::string>& expressions, const std::vector<std::string>& shown,
    unsigned flag_set) {
  std::shared_ptr<Matcher> matcher(new Matcher());
  matcher->size_ = expressions.size();
  if (expressions.empty()) return matcher;
  std::vector<const char*> pointers;
  std::vector<unsigned> flags(expressions.size(), flag_set);
  std::vector<unsigned> ids;
  for (size_t i = 0; i < expressions.size(); ++i) {
    pointers.push_back(expressions[i].c_str());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_compile_error_t* error = nullptr;
  const hs_error_t result =
      hs_compile_multi(pointers.data(), flags.data(), ids.data(), static_cast<unsigned>(pointers.size()),
                       HS_MODE_BLOCK, nullptr, &matcher->database_, &error);
  if (result != HS_SUCCESS) {
    std::string message = error != nullptr && error->message != nullptr ? error->message : "unknown";
    const int at = error != nullptr ? error->expression : -1;
    hs_free_compile_error(error);
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot compile '", at >= 0 ? shown[at] : absl::StrJoin(shown, "', '"), "': ", message));
  }
  matcher->id_ = next_matcher_id.fetch_add(1);
  if (ThreadScratch(matcher->database_, matcher->id_) == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate Hyperscan scratch space");
  }
  return matcher;
}

Matcher::~Matcher() {
  if (database_ != nullptr) hs_free_database(database_);
}

void Matcher::Scan(absl::string_view folded_text, std::vector<Hit>* hits) const {
  if (database_ == nullptr || folded_text.empty()) return;
  hs_scratch_t* scratch = ThreadScratch(database_, id_);
  if (scratch == nullptr) return;
  auto on_match = [](unsigned int id, unsigned long long /*from*/, unsigned long long to,
                     unsigned int /*flags*/, void* context) -> int {
    static_cast<std::vector<Hit>*>(context)->push_back(
        {static_cast<int>(id), static_cast<size_t>(to)});
    return 0;
  };
  hs_scan(database_, folded_text.data(), static_cast<unsigned>(folded_text.size()), 0, scratch,
          on_match, hits);
}

}  // namespace triage::router
