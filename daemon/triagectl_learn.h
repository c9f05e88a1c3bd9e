#pragma once

// triagectl's offline learning commands: train a model from labelled JSONL, and evaluate a
// model (cross-validated or on a test file) or a config as it is. They need no daemon.
namespace triage::ctl {

// `args` excludes the program and command names. Return the process exit code: 0 done,
// 1 bad input or a failed step (the reason on stderr), 2 usage.
int TrainCommand(int argc, char** argv);
int EvaluateCommand(int argc, char** argv);

}  // namespace triage::ctl
