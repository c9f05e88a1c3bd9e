#include "router/sources/source_type.h"

namespace triage::router {

// Each folder of router/sources/ defines one of these.
const SourceType& GenericSourceType();
const SourceType& XSourceType();
const SourceType& MetaSourceType();
const SourceType& TelegramSourceType();
const SourceType& LineSourceType();
const SourceType& ThreadsSourceType();

const std::vector<const SourceType*>& SourceTypes() {
  static const std::vector<const SourceType*> types = {
      &GenericSourceType(),
      &XSourceType(),
      &MetaSourceType(),
      &TelegramSourceType(),
      &LineSourceType(),
      &ThreadsSourceType(),
  };
  return types;
}

const SourceType* FindSourceType(std::string_view name) {
  for (const SourceType* type : SourceTypes()) {
    if (type->name() == name) return type;
  }
  return nullptr;
}

}  // namespace triage::router
