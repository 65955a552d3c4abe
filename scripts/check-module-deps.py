"""Checks Package.swift's one-way module rules: pure planning and decoding never link libpq or libcurl,
and the state store and the planner never reach the HTTP side.

Reads `swift package describe --type json` and fails, naming the path, when a guarded module
reaches a forbidden one through its target dependencies.
"""
import json, subprocess, sys

# module: modules it must never reach
RULES = {
    "Core": {"CLibPQ", "CCurl", "Replication", "Decoding"},
    # Cron and the scheduler's rules are pure: the configuration (and so the handlers) use them.
    "Scheduling": {"CLibPQ", "CCurl", "Replication", "StateStore", "Delivery", "Pipeline"},
    "RelayConfiguration": {"CLibPQ", "CCurl", "Replication", "StateStore", "Delivery", "Pipeline"},
    "Decoding": {"CLibPQ", "CCurl", "Replication"},
    # Watermarks, windows and the chunk query are pure: tests need no database.
    "Backfill": {"CLibPQ", "CCurl", "Replication", "StateStore", "Delivery", "Pipeline"},
    "PlannedEffects": {"CLibPQ", "CCurl", "Replication", "Delivery"},
    "Handlers": {"CLibPQ", "CCurl", "Replication", "Delivery", "Pipeline", "StateStore"},
    # The state store runs statements; it neither sends HTTP nor knows a handler or who calls it.
    "StateStore": {"CCurl", "Handlers", "Delivery", "Pipeline"},
    "Pipeline": {"CCurl", "Delivery"},
    # Log lines are formatted, not sent: the handler reaches neither database nor HTTP.
    # The admin server reads the state store and serves HTTP; it never sends deliveries or plans.
    "Admin": {"CCurl", "Delivery", "Handlers", "Pipeline"},
    "LogFormat": {"CLibPQ", "CCurl", "Replication", "StateStore", "Delivery", "Pipeline"},
}

description = json.loads(subprocess.run(["swift", "package", "describe", "--type", "json"], check=True,
                                        capture_output=True, text=True).stdout)
dependencies = {target["name"]: target.get("target_dependencies", []) for target in description["targets"]}


def paths(start):
    """Every module reachable from start, with the path that reaches it."""
    seen, stack = {}, [(start, [start])]
    while stack:
        name, path = stack.pop()
        for dependency in dependencies.get(name, []):
            if dependency not in seen:
                seen[dependency] = path + [dependency]
                stack.append((dependency, path + [dependency]))
    return seen


problems = []
for module, forbidden in RULES.items():
    if module not in dependencies:
        problems.append("%s: no such target" % module)
        continue
    reached = paths(module)
    problems += ["%s reaches %s: %s" % (module, name, " -> ".join(reached[name])) for name in sorted(forbidden & set(reached))]
for problem in problems:
    print("module dependencies: " + problem, file=sys.stderr)
if problems:
    sys.exit(1)
print("module dependencies: ok (%s)" % ", ".join("%s never reaches %s" % (m, "/".join(sorted(f))) for m, f in RULES.items()))
