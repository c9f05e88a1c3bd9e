#include "router/settings.h"

namespace triage::router {

const std::string& Settings::Get(const std::string& key) const {
  static const std::string kEmpty;
  const auto it = values.find(key);
  return it == values.end() ? kEmpty : it->second;
}

const std::vector<std::string>& Settings::List(const std::string& key) const {
  static const std::vector<std::string> kEmpty;
  const auto it = lists.find(key);
  return it == lists.end() ? kEmpty : it->second;
}

}  // namespace triage::router
