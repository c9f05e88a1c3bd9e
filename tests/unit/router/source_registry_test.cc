#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "router/sources/source_type.h"

namespace triage::router {
namespace {

// The registry and the folders agree: every folder of router/sources/ is a registered type of
// the same name (so a new source is one folder and one registry line), and back.
TEST(SourceRegistryTest, EveryFolderIsARegisteredTypeAndBack) {
  std::set<std::string> folders;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TRIAGE_SOURCE_DIR) + "/router/sources")) {
    if (entry.is_directory()) folders.insert(entry.path().filename().string());
  }
  std::set<std::string> names;
  for (const SourceType* type : SourceTypes()) {
    EXPECT_TRUE(names.insert(std::string(type->name())).second) << "two types named " << type->name();
    EXPECT_EQ(FindSourceType(type->name()), type);
  }
  EXPECT_EQ(folders, names);
  EXPECT_EQ(FindSourceType("nope"), nullptr);
}

TEST(SourceRegistryTest, EachTypeDeclaresARequiredSecretThatItsSignatureUses) {
  for (const SourceType* type : SourceTypes()) {
    Settings settings;
    bool has_secret = false;
    for (const Setting& setting : type->settings()) {
      if (setting.kind == Setting::Kind::kSecret && setting.required) {
        has_secret = true;
        settings.values[setting.key] = "secret-of-" + setting.key;
      } else if (setting.kind == Setting::Kind::kString) {
        settings.values[setting.key] = setting.default_value;
      }
    }
    EXPECT_TRUE(has_secret) << type->name() << ": a webhook source without a secret would take anyone's posts";
    const std::vector<SignatureCheck> checks = type->Signature(settings);
    ASSERT_FALSE(checks.empty()) << type->name();
    EXPECT_FALSE(checks.back().only_if_present) << type->name() << ": the last check must always apply";
    for (const SignatureCheck& check : checks) {
      EXPECT_FALSE(check.header.empty()) << type->name();
      EXPECT_TRUE(check.key.starts_with("secret-of-")) << type->name() << " checks with a key it does not declare";
    }
    EXPECT_TRUE(type->Validate(settings).empty()) << type->name() << ": the defaults must validate";
  }
}

}  // namespace
}  // namespace triage::router
