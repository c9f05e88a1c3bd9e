# Turns config/default.yaml into a C++ source so the binary carries its default config.
file(READ ${INPUT} CONTENT)
file(WRITE ${OUTPUT} "// Generated from config/default.yaml by config/embed.cmake. Do not edit.\n"
  "#include \"config/config.h\"\n"
  "namespace triage::config {\n"
  "absl::string_view DefaultConfigYaml() {\n"
  "  static constexpr char kYaml[] = R\"TRIAGED_YAML(${CONTENT})TRIAGED_YAML\";\n"
  "  return {kYaml, sizeof(kYaml) - 1};\n"
  "}\n"
  "}  // namespace triage::config\n")
