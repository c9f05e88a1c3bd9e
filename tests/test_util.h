#pragma once

#include <simdjson.h>

#include <cstdlib>
#include <initializer_list>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace triage::testing {

// A fresh directory under the test temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "triaged-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The bytes of a file; empty when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The exact bytes of tests/fixtures/<name> (signatures are computed over them).
inline std::string ReadFixture(const std::string& name) {
  return ReadFile(std::string(TRIAGE_FIXTURES) + "/" + name);
}

// The value at `path` in a JSON document: a string's text, anything else as JSON. Throws
// (failing the test) when the path is missing or the document unreadable.
inline std::string Field(const std::string& json, std::initializer_list<const char*> path) {
  simdjson::dom::parser parser;
  simdjson::dom::element e = parser.parse(json);
  for (const char* key : path) e = e[key];
  if (e.is_string()) return std::string(std::string_view(e));
  return simdjson::to_string(e);
}

}  // namespace triage::testing
