# Turns a file of config/ into a C++ source so the binary carries it: default.yaml (the default
# config) and sentiment_lexicon.tsv (word valences). -DINPUT, -DOUTPUT, -DFUNCTION.
file(READ ${INPUT} CONTENT)
get_filename_component(NAME ${INPUT} NAME)
file(WRITE ${OUTPUT} "// Generated from config/${NAME} by config/embed.cmake. Do not edit.\n"
  "#include \"config/config.h\"\n"
  "namespace triage::config {\n"
  "absl::string_view ${FUNCTION}() {\n"
  "  static constexpr char kText[] = R\"TRIAGED_EMBED(${CONTENT})TRIAGED_EMBED\";\n"
  "  return {kText, sizeof(kText) - 1};\n"
  "}\n"
  "}  // namespace triage::config\n")
