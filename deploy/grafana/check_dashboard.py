#!/usr/bin/env python3
"""Checks the Grafana dashboard: valid JSON, unique panel ids, every panel has a query, and every
triage_* metric a query uses is one the daemon declares (daemon/metrics.cc)."""
import json, re, sys, pathlib

root = pathlib.Path(__file__).resolve().parents[2]
dashboard = json.loads((root / "deploy/grafana/triaged.json").read_text())
declared = set(re.findall(r'\.Name\("(triage_[a-z_]+)"\)', (root / "daemon/metrics.cc").read_text()))
errors = []
ids = [p["id"] for p in dashboard["panels"]]
if len(ids) != len(set(ids)):
    errors.append("panel ids repeat")
for panel in dashboard["panels"]:
    if not panel.get("targets"):
        errors.append(f"panel {panel['title']!r} has no query")
    for target in panel.get("targets", []):
        for name in re.findall(r"triage_[a-z_]+", target["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if base not in declared:
                errors.append(f"panel {panel['title']!r}: unknown metric {name}")
for e in errors:
    print(e, file=sys.stderr)
print(f"{len(dashboard['panels'])} panels, {len(declared)} metrics declared, {len(errors)} errors")
sys.exit(1 if errors else 0)
