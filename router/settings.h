// The settings a source or destination type declares for its config block, and their loaded
// values. The config loader reads them generically; each type says what it takes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace triage::router {

// One key of a type's config block, besides the keys every source or destination has.
struct Setting {
  enum class Kind {
    kSecret,      // a value, or {env: NAME} / {file: PATH}
    kString,
    kStringList,
    kInteger,     // within [min, max]
    kTemplate,    // a ticket template ({{field}} placeholders), checked when the config loads
  };
  std::string key;
  Kind kind = Kind::kString;
  bool required = false;
  std::string default_value;         // a string or template setting's value when absent
  std::vector<std::string> allowed;  // a string setting's possible values (empty: any)
  int64_t min = 0, max = 0;          // an integer setting's bounds (integers are never required)
};

// A configured block's settings, secrets resolved; every declared string setting has a value
// (its default when absent); an integer setting is present only when given.
struct Settings {
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, int64_t> integers;

  const std::string& Get(const std::string& key) const;
  const std::vector<std::string>& List(const std::string& key) const;
  bool Has(const std::string& key) const { return values.contains(key) && !Get(key).empty(); }

  bool operator==(const Settings&) const = default;
};

}  // namespace triage::router
