#!/usr/bin/env python3
"""Static checks of the files in deploy/ (scripts/check-deploy.sh runs this after the checks
that need systemd-analyze and promtool).

Prints one line per check, `ok    <file>: <what>` or `FAIL  <file>: <what is wrong>`, and exits
1 when any check failed. Needs Python 3.11+ (tomllib) and PyYAML (Debian: python3-yaml).

What is checked:
- the configuration examples (every .toml under deploy/, and the TOML inside the Kubernetes
  ConfigMap) parse, and use only keys the configuration schema knows, with values of the right
  kind and range. The keys come from Sources/Configuration/ConfigSchema.swift (its ConfigKey
  lines, read with a regular expression) and ScheduleEntries.swift ([[schedules]] keys).
- the Kubernetes manifests parse into objects of known kinds, and fit together: replicas, probes,
  ports, secrets as files, the security context, resources, selectors, the ServiceMonitor's token.
- the systemd unit has the hardening and lifecycle directives, and its configuration names the
  credentials the unit loads.
- the alert rules have `for`, a severity, a summary and a description, and use metric names from
  DESIGN.md's "Operations" (promtool checks the PromQL itself).
- the Containerfile's stages, user, port, health check, entry point, and no compiler at run time.
- Markdown links in deploy/ resolve; the Supabase guide names the tables sql/ grants and publishes.
- every file in deploy/ is covered by one of these checks.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ADMIN_PORT = 9187

# Environment variables the service reads besides CHANGERELAY_<SECTION>_<KEY> (README: Configuration).
EXTRA_ENVIRONMENT = {"CHANGERELAY_SERVICE_KEY", "CHANGERELAY_SQL_DIR", "CHANGERELAY_PG_BINDIR"}
# Metric names from DESIGN.md "Operations", plus the two gauges the alert rules name for the
# features that export them (the file's header says so).
KNOWN_METRICS = {
    "changerelay_replication_lag_bytes", "changerelay_checkpoint_lsn", "changerelay_changes_total",
    "changerelay_transactions_total", "changerelay_deliveries_total", "changerelay_deliveries_pending",
    "changerelay_delivery_duration_seconds", "changerelay_commit_to_delivery_seconds",
    "changerelay_buffers_open", "changerelay_backfill_rows_total",
    "changerelay_conversation_checks_skipped_total", "changerelay_dual_write_drift_total",
    "changerelay_dual_write_changes_total", "changerelay_backfills_running", "changerelay_slot_active",
}
KNOWN_KINDS = {
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
}

failures = 0
covered: set[Path] = set()


def exported_metrics() -> set[str]:
    """Every `changerelay_…` name spelled out in the service's sources: an alert over a name not
    among them could never fire."""
    names: set[str] = set()
    for source in (ROOT / "Sources").rglob("*.swift"):
        names.update(re.findall(r'"(changerelay_[a-z0-9_]+)"', source.read_text()))
    return names


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def ok(path: Path | str, what: str) -> None:
    print(f"ok    {path if isinstance(path, str) else rel(path)}: {what}")


def fail(path: Path | str, what: str) -> None:
    global failures
    failures += 1
    print(f"FAIL  {path if isinstance(path, str) else rel(path)}: {what}")


def check(path: Path | str, what: str, problems: list[str]) -> bool:
    """One line for a check: ok, or FAIL with every problem found."""
    if problems:
        fail(path, f"{what}: " + "; ".join(problems))
        return False
    ok(path, what)
    return True


# ------------------------------------------------------------------------------------------
# The configuration schema, read from the Swift sources.

def load_schema() -> tuple[dict[str, tuple[str, object]], list[str]]:
    source = (ROOT / "Sources/Configuration/ConfigSchema.swift").read_text()
    keys: dict[str, tuple[str, object]] = {}
    pattern = re.compile(r'ConfigKey\(section:\s*"([^"]+)",\s*name:\s*"([^"]+)",\s*kind:\s*\.(\w+)(\((.*?)\))?\s*(,\s*defaultValue|\))')
    for match in pattern.finditer(source):
        section, name, kind, argument = match.group(1), match.group(2), match.group(3), match.group(5)
        detail: object = None
        if kind == "integer" and argument:
            low, high = (int(part.replace("_", "")) for part in argument.split("..."))
            detail = (low, high)
        elif kind == "choice" and argument:
            detail = re.findall(r'"([^"]*)"', argument)
        keys[f"{section}.{name}"] = (kind, detail)
    schedules = (ROOT / "Sources/Configuration/ScheduleEntries.swift").read_text()
    accepted = re.search(r"static let accepted = \[([^\]]*)\]", schedules)
    schedule_keys = re.findall(r'"([^"]+)"', accepted.group(1)) if accepted else []
    return keys, schedule_keys


SCHEMA, SCHEDULE_KEYS = load_schema()
SCHEMA_PATH = "Sources/Configuration/ConfigSchema.swift"
DECLARED = (ROOT / SCHEMA_PATH).read_text().count("ConfigKey(section:")
if len(SCHEMA) != DECLARED or len(SCHEMA) < 20 or not SCHEDULE_KEYS:
    fail(SCHEMA_PATH, f"read {len(SCHEMA)} of {DECLARED} ConfigKey(section: ...) lines and {len(SCHEDULE_KEYS)} [[schedules]] keys: "
                      "the lines changed shape; update load_schema() in scripts/check_deploy.py")
else:
    ok(SCHEMA_PATH, f"{len(SCHEMA)} configuration keys and [[schedules]] keys {', '.join(SCHEDULE_KEYS)} read")
KNOWN_KEYS = SCHEMA


def environment_name(path: str) -> str:
    return "CHANGERELAY_" + path.replace(".", "_").upper()


ENVIRONMENT_KEYS = {environment_name(path): path for path in KNOWN_KEYS}


def value_problem(path: str, value: object) -> str | None:
    kind, detail = KNOWN_KEYS[path]
    if kind in ("string",):
        return None if isinstance(value, str) and value else "must be a non-empty string"
    if kind == "httpURL":
        ok_url = isinstance(value, str) and re.match(r"(?i)^https?://[^/?#\s]+", value) is not None
        return None if ok_url else f"must be an http:// or https:// URL with a host, got {value!r}"
    if kind == "httpBaseURL":
        ok_url = isinstance(value, str) and re.match(r"(?i)^https?://[^/?#\s]+[^?#\s]*$", value) is not None
        return None if ok_url else f"must be an http:// or https:// URL with a host and no query or fragment, got {value!r}"
    if kind == "connectionString":
        if not isinstance(value, str) or not value:
            return "must be a non-empty string"
        broken = re.search(r"%(?![0-9A-Fa-f]{2})|%00", value) if re.match(r"postgres(ql)?://", value) else None
        return f"a percent escape at byte {broken.start() + 1} cannot be decoded" if broken else None
    if kind == "listenAddress":
        ok_listen = isinstance(value, str) and (value == "off" or re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):\d{1,5}", value) is not None)
        return None if ok_listen else f"must be host:port, [v6-address]:port or off, got {value!r}"
    if kind == "slotName":
        ok_slot = isinstance(value, str) and re.fullmatch(r"[a-z0-9_]{1,63}", value) is not None
        return None if ok_slot else f"must be 1 to 63 of a-z, 0-9, _, got {value!r}"
    if kind == "choice":
        return None if value in detail else f"must be one of {', '.join(detail)}, got {value!r}"
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"must be an integer, got {value!r}"
        low, high = detail
        return None if low <= value <= high else f"must be between {low} and {high}, got {value}"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind in ("strings", "webhookRules", "tableNames"):
        return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else "must be an array of strings"
    return f"unknown kind {kind} in the schema"


CRON_FIELD = re.compile(r"^[0-9A-Za-z*,/\-]+$")


def check_config(source: Path | str, text: str) -> dict[str, object] | None:
    """Parses one configuration; returns its dotted keys and values (and 'schedules')."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        fail(source, f"TOML does not parse: {error}")
        return None
    values: dict[str, object] = {}
    problems: list[str] = []

    def walk(prefix: str, table: dict) -> None:
        for key, value in table.items():
            path = f"{prefix}.{key}" if prefix else key
            if path == "schedules":
                values[path] = value
                continue
            if isinstance(value, dict):
                walk(path, value)
                continue
            if path not in KNOWN_KEYS:
                sections = sorted({known.rsplit(".", 1)[0] for known in KNOWN_KEYS})
                section = path.rsplit(".", 1)[0] if "." in path else ""
                hint = (f"[{section}] accepts " + ", ".join(sorted(k.rsplit(".", 1)[1] for k in KNOWN_KEYS if k.rsplit(".", 1)[0] == section))
                        if section in sections else "known sections: " + ", ".join(sections))
                problems.append(f"unknown key '{path}' ({hint})")
                continue
            problem = value_problem(path, value)
            if problem:
                problems.append(f"'{path}' {problem}")
            values[path] = value

    walk("", document)
    schedules = document.get("schedules", [])
    if not isinstance(schedules, list) or not all(isinstance(entry, dict) for entry in schedules):
        problems.append("'schedules' must be [[schedules]] entries")
        schedules = []
    names: set[str] = set()
    for index, entry in enumerate(schedules):
        label = f"schedules[{index}] {entry.get('name', '')!r}"
        for key in entry:
            if key not in SCHEDULE_KEYS:
                problems.append(f"{label}: unknown key '{key}' ([[schedules]] accepts {', '.join(SCHEDULE_KEYS)})")
        for key in SCHEDULE_KEYS:
            if key == "timeout_ms":
                value = entry.get(key)
                if value is not None and (type(value) is not int or not 1 <= value <= 2**31 - 1):
                    problems.append(f"{label}: 'timeout_ms' must be an integer from 1 to {2**31 - 1}")
            elif not isinstance(entry.get(key), str) or not entry[key].strip():
                problems.append(f"{label}: '{key}' must be a non-empty string")
        name = entry.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(f"{label}: the same name twice")
            if name.startswith("changerelay."):
                problems.append(f"{label}: names starting with 'changerelay.' are reserved")
            names.add(name)
        cron = entry.get("cron")
        if isinstance(cron, str) and (len(cron.split()) != 5 or not all(CRON_FIELD.match(f) for f in cron.split())):
            problems.append(f"{label}: cron '{cron}' is not five cron fields")
    detail = f"{len(values) - (1 if 'schedules' in values else 0)} keys"
    if schedules:
        detail += f", {len(schedules)} [[schedules]] entries"
    check(source, f"configuration parses and uses known keys with valid values ({detail})", problems)
    return values


def is_loopback_listen(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------
# systemd

def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections.setdefault(current, []).append((key.strip(), value.strip()))
    return sections


def seconds(text: str) -> float | None:
    match = re.fullmatch(r"(\d+)\s*(ms|s|sec|min|m)?", text.strip())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number / 1000 if unit == "ms" else number * 60 if unit in ("min", "m") else number


def check_systemd() -> None:
    unit_path = DEPLOY / "systemd/changerelay.service"
    config_path = DEPLOY / "systemd/changerelay.toml"
    covered.update({unit_path, config_path})
    unit = parse_unit(unit_path)
    service = unit.get("Service", [])
    directives: dict[str, list[str]] = {}
    for key, value in service:
        directives.setdefault(key, []).append(value)

    def one(key: str) -> str | None:
        return directives.get(key, [None])[-1]

    problems = []
    required = {
        "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "Restart": "on-failure", "KillSignal": "SIGTERM",
        "MemoryDenyWriteExecute": "yes", "StateDirectory": "changerelay",
    }
    for key, expected in required.items():
        if one(key) != expected:
            problems.append(f"{key}={expected} expected, found {one(key)!r}")
    for key in ("RestartSec", "TimeoutStopSec", "ExecStart"):
        if one(key) is None:
            problems.append(f"{key}= missing")
    families = set(" ".join(directives.get("RestrictAddressFamilies", [])).split())
    if not {"AF_INET", "AF_INET6"} <= families or families - {"AF_INET", "AF_INET6", "AF_UNIX"}:
        problems.append(f"RestrictAddressFamilies should be AF_INET AF_INET6 AF_UNIX, found {sorted(families)}")
    if "@system-service" not in directives.get("SystemCallFilter", []):
        problems.append("SystemCallFilter=@system-service missing")
    if one("CapabilityBoundingSet") not in ("",):
        problems.append("CapabilityBoundingSet= (empty: no capabilities) missing")
    credentials = {}
    for value in directives.get("LoadCredential", []):
        name, _, source = value.partition(":")
        credentials[name] = source
    for name in ("service_key", "admin_token"):
        if name not in credentials:
            problems.append(f"LoadCredential={name}:/etc/changerelay/{name} missing")
    exec_start = shlex.split(one("ExecStart") or "")
    if exec_start[1:2] != ["run"] or "--config" not in exec_start:
        problems.append(f"ExecStart should be '<binary> run --config FILE', found {' '.join(exec_start)!r}")
    check(unit_path, "hardening and lifecycle directives (" + ", ".join(sorted(required)) + ", credentials)", problems)

    environment = {}
    for value in directives.get("Environment", []):
        for assignment in shlex.split(value):
            key, _, val = assignment.partition("=")
            environment[key] = val
    check(unit_path, "Environment= names only variables the service reads",
          [f"{key} is not a configuration variable" for key in environment
           if key.startswith("CHANGERELAY_") and key not in ENVIRONMENT_KEYS and key not in EXTRA_ENVIRONMENT])

    config = check_config(config_path, config_path.read_text())
    if config is None:
        return
    problems = []
    credential_dir = "/run/credentials/changerelay.service/"
    for key in ("functions.service_key_file", "admin.token_file"):
        value = config.get(key)
        if not isinstance(value, str) or not value.startswith(credential_dir):
            problems.append(f"{key} should be a file in {credential_dir} (%d), found {value!r}")
        elif value[len(credential_dir):] not in credentials:
            problems.append(f"{key} = {value!r} but the unit loads no credential '{value[len(credential_dir):]}'")
    if "PGPASSFILE" in environment and environment["PGPASSFILE"].startswith("%d/"):
        if environment["PGPASSFILE"][3:] not in credentials:
            problems.append(f"PGPASSFILE={environment['PGPASSFILE']} but no such LoadCredential")
    url = str(config.get("source.database_url", ""))
    if re.match(r"postgres(ql)?://[^/@:]+:[^/@]+@", url):
        problems.append("source.database_url carries a password; use the password file credential")
    spill = config.get("pipeline.spill_directory")
    state_directory = "/var/lib/" + (one("StateDirectory") or "")
    if spill != state_directory and not str(spill).startswith(state_directory + "/"):
        problems.append(f"pipeline.spill_directory {spill!r} is not in the unit's StateDirectory ({state_directory}), "
                        "the only writable place under ProtectSystem=strict")
    listen = str(config.get("admin.listen", "127.0.0.1:9187"))
    if not is_loopback_listen(listen) and "admin.token_file" not in config:
        problems.append(f"admin.listen {listen} is not loopback and admin.token_file is not set (run refuses that)")
    if config_path.name not in " ".join(exec_start):
        problems.append(f"ExecStart does not read {config_path.name}")
    timeout = config.get("delivery.timeout_ms", 15000)
    stop = seconds(one("TimeoutStopSec") or "")
    if stop is None or stop < timeout / 1000 + 30:
        problems.append(f"TimeoutStopSec={one('TimeoutStopSec')} leaves the drain less than delivery.timeout_ms + 30 s")
    check(config_path, "fits the unit (credentials under %d, spill directory in StateDirectory, no password, drain time)", problems)


# ------------------------------------------------------------------------------------------
# Kubernetes

def quantity(text: object) -> float | None:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3, "": 1}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match or match.group(2) not in units:
        return None
    return float(match.group(1)) * units[match.group(2)]


def labels_match(selector: dict | None, labels: dict | None) -> bool:
    return bool(selector) and all((labels or {}).get(key) == value for key, value in selector.items())


def check_kubernetes() -> None:
    directory = DEPLOY / "kubernetes"
    objects: list[tuple[Path, dict]] = []
    for path in sorted(directory.rglob("*")):
        if path.suffix not in (".yaml", ".yml"):
            continue
        covered.add(path)
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as error:
            fail(path, f"YAML does not parse: {' '.join(str(error).split())}")
            continue
        problems = []
        for index, document in enumerate(documents):
            if not isinstance(document, dict):
                problems.append(f"document {index} is not a mapping")
                continue
            api, kind = document.get("apiVersion"), document.get("kind")
            name = (document.get("metadata") or {}).get("name")
            if (api, kind) not in KNOWN_KINDS:
                problems.append(f"document {index}: unknown apiVersion/kind {api}/{kind}")
            if not name:
                problems.append(f"document {index} ({kind}): metadata.name missing")
            objects.append((path, document))
        kinds = ", ".join(f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}" for d in documents if isinstance(d, dict))
        check(path, f"{len(documents)} object(s) of known kinds: {kinds}", problems)
        if not documents:
            fail(path, "no object in the file")

    def find(kind: str) -> list[tuple[Path, dict]]:
        return [(p, d) for p, d in objects if isinstance(d, dict) and d.get("kind") == kind]

    workloads = find("Deployment") + find("StatefulSet")
    if len(workloads) != 1:
        fail(directory, f"expected one Deployment or StatefulSet, found {len(workloads)}")
        return
    path, workload = workloads[0]
    spec = workload.get("spec") or {}
    template = spec.get("template") or {}
    pod_labels = (template.get("metadata") or {}).get("labels") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    container = next((c for c in containers if c.get("name") == "changerelay"), containers[0] if containers else {})
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}

    def probe_port(probe: dict) -> object:
        port = ((probe or {}).get("httpGet") or {}).get("port")
        return ports.get(port) if isinstance(port, str) else port

    problems = []
    if spec.get("replicas") != 2:
        problems.append(f"replicas is {spec.get('replicas')}, expected 2 (one active, one standby)")
    if not labels_match((spec.get("selector") or {}).get("matchLabels"), pod_labels):
        problems.append("spec.selector.matchLabels does not match the pod template's labels")
    if ADMIN_PORT not in ports.values():
        problems.append(f"no containerPort {ADMIN_PORT}")
    for probe_name, expected in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        probe = container.get(probe_name)
        got = ((probe or {}).get("httpGet") or {}).get("path")
        if got != expected:
            problems.append(f"{probe_name} path is {got!r}, expected {expected}")
        if probe_port(probe) != ADMIN_PORT:
            problems.append(f"{probe_name} port is {((probe or {}).get('httpGet') or {}).get('port')!r}, expected {ADMIN_PORT}")
    startup = container.get("startupProbe")
    if startup and (((startup.get("httpGet") or {}).get("path") != "/healthz") or probe_port(startup) != ADMIN_PORT):
        problems.append(f"startupProbe should GET /healthz on {ADMIN_PORT}")
    check(path, f"replicas 2, selector matches the pod, readiness /readyz and liveness /healthz on {ADMIN_PORT}", problems)

    problems = []
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for where, table, key in (("requests", requests, "cpu"), ("requests", requests, "memory"), ("limits", limits, "memory")):
        if quantity(table.get(key)) is None:
            problems.append(f"resources.{where}.{key} missing or malformed")
    if quantity(requests.get("memory")) and quantity(limits.get("memory")) and quantity(requests["memory"]) > quantity(limits["memory"]):
        problems.append("memory request above the limit")
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}
    if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not true")
    if (security.get("runAsUser", pod_security.get("runAsUser")) or 0) == 0:
        problems.append("runAsUser is missing or 0")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities.drop does not include ALL")
    seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"seccompProfile type is {seccomp!r}, expected RuntimeDefault")
    check(path, "resources (cpu and memory requests, memory limit) and security context (non-root, read-only root, no capabilities, seccomp)", problems)

    # The configuration the pods read, and how its files and secrets get there.
    config_maps = {d["metadata"]["name"]: (p, d) for p, d in find("ConfigMap")}
    secrets = {d["metadata"]["name"]: d for _, d in find("Secret")}
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = container.get("volumeMounts") or []
    files: dict[str, tuple[str, str, str]] = {}     # path in the pod -> (volume kind, source name, key)
    writable: list[str] = []
    problems = []
    for mount in mounts:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            problems.append(f"volumeMount {mount.get('name')} has no volume")
            continue
        base = mount["mountPath"].rstrip("/")
        if "emptyDir" in volume:
            writable.append(base)
        for kind, field, name_field in (("configMap", "configMap", "name"), ("secret", "secret", "secretName")):
            if field not in volume:
                continue
            source_name = volume[field].get(name_field)
            items = volume[field].get("items")
            if items:
                for item in items:
                    files[f"{base}/{item['path']}"] = (kind, source_name, item["key"])
            elif kind == "configMap" and source_name in config_maps:
                for key in (config_maps[source_name][1].get("data") or {}):
                    files[f"{base}/{key}"] = (kind, source_name, key)
            elif kind == "secret" and source_name in secrets:
                secret = secrets[source_name]
                for key in list((secret.get("stringData") or {})) + list((secret.get("data") or {})):
                    files[f"{base}/{key}"] = (kind, source_name, key)
            if kind == "secret" and not mount.get("readOnly"):
                problems.append(f"the secret volume {mount.get('name')} is not mounted readOnly")
    arguments = list(container.get("command") or []) + list(container.get("args") or [])
    config_file = arguments[arguments.index("--config") + 1] if "--config" in arguments else "/etc/changerelay/changerelay.toml"
    config = None
    if config_file not in files or files[config_file][0] != "configMap":
        problems.append(f"--config {config_file} is not a file of a mounted ConfigMap")
    else:
        _, map_name, key = files[config_file]
        map_path, config_map = config_maps[map_name]
        config = check_config(f"{rel(map_path)} ({map_name}/{key})", config_map["data"][key])
    env = {e.get("name"): e for e in container.get("env") or []}
    for name in env:
        if name.startswith("CHANGERELAY_") and name not in ENVIRONMENT_KEYS and name not in EXTRA_ENVIRONMENT:
            problems.append(f"env {name} is not a configuration variable")
    secret_refs = [(name, ((e.get("valueFrom") or {}).get("secretKeyRef") or {})) for name, e in env.items()]
    referenced_keys = [(ref.get("name"), ref.get("key")) for _, ref in secret_refs if ref]
    referenced_keys += [(name, key) for kind, name, key in files.values() if kind == "secret"]
    if config is not None:
        for key in ("functions.service_key_file", "admin.token_file"):
            value = config.get(key)
            if value is None:
                problems.append(f"{key} is not set")
            elif value not in files or files[value][0] != "secret":
                problems.append(f"{key} = {value!r} is not a file of a mounted Secret")
        if "source.database_url" not in config:
            ref = (env.get("CHANGERELAY_SOURCE_DATABASE_URL") or {}).get("valueFrom", {}).get("secretKeyRef")
            if not ref:
                problems.append("source.database_url is neither in the configuration nor in env CHANGERELAY_SOURCE_DATABASE_URL from a Secret")
        elif re.match(r"postgres(ql)?://[^/@:]+:[^/@]+@", str(config["source.database_url"])):
            problems.append("source.database_url in the ConfigMap carries a password")
        listen = str(config.get("admin.listen", "127.0.0.1:9187"))
        if is_loopback_listen(listen) or not listen.endswith(f":{ADMIN_PORT}"):
            problems.append(f"admin.listen is {listen}: the probes and Prometheus need 0.0.0.0:{ADMIN_PORT} in a pod")
        spill = str(config.get("pipeline.spill_directory", "/tmp"))
        if not any(spill == w or spill.startswith(w + "/") for w in writable):
            problems.append(f"pipeline.spill_directory {spill} is not on an emptyDir (the root filesystem is read-only)")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < int(config.get("delivery.timeout_ms", 15000)) / 1000 + 30:
            problems.append(f"terminationGracePeriodSeconds {grace} leaves the drain less than delivery.timeout_ms + 30 s")
    for secret_name, key in referenced_keys:
        secret = secrets.get(secret_name)
        if secret is not None and key not in list((secret.get("stringData") or {})) + list((secret.get("data") or {})):
            problems.append(f"Secret {secret_name} has no key {key}")
    check(path, "config from the ConfigMap, secrets mounted as files (service key, admin token), database URL from a Secret, spill on an emptyDir, grace period", problems)

    # Service, PodDisruptionBudget, ServiceMonitor.
    services = find("Service")
    admin_service = None
    for service_path, service in services:
        service_spec = service.get("spec") or {}
        problems = []
        if not labels_match(service_spec.get("selector"), pod_labels):
            problems.append("selector does not match the pod template's labels")
        admin = [p for p in service_spec.get("ports") or []
                 if (ports.get(p.get("targetPort")) if isinstance(p.get("targetPort"), str) else p.get("targetPort", p.get("port"))) == ADMIN_PORT]
        if not admin:
            problems.append(f"no port targets the container's {ADMIN_PORT}")
        else:
            admin_service = (service, admin[0])
        check(service_path, f"Service {service['metadata']['name']}: selector matches the pods, port to {ADMIN_PORT}", problems)
    if not services:
        fail(directory, "no Service for the admin port")
    budgets = find("PodDisruptionBudget")
    for budget_path, budget in budgets:
        budget_spec = budget.get("spec") or {}
        problems = []
        if not labels_match((budget_spec.get("selector") or {}).get("matchLabels"), pod_labels):
            problems.append("selector does not match the pod template's labels")
        if budget_spec.get("maxUnavailable") != 1 and budget_spec.get("minAvailable") != 1:
            problems.append("neither maxUnavailable: 1 nor minAvailable: 1")
        check(budget_path, "PodDisruptionBudget: selector matches the pods, one pod at a time", problems)
    if not budgets:
        fail(directory, "no PodDisruptionBudget")
    monitors = find("ServiceMonitor")
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for monitor_path, monitor in monitors:
        monitor_spec = monitor.get("spec") or {}
        problems = []
        if admin_service is None or not labels_match((monitor_spec.get("selector") or {}).get("matchLabels"),
                                                     admin_service[0]["metadata"].get("labels")):
            problems.append("selector does not match the admin Service's labels")
        endpoints = monitor_spec.get("endpoints") or []
        if not endpoints:
            problems.append("no endpoints")
        token_key = None
        if config is not None and config.get("admin.token_file") in files:
            _, token_secret, token_key = files[config["admin.token_file"]]
        for endpoint in endpoints:
            if admin_service is not None and endpoint.get("port") != admin_service[1].get("name"):
                problems.append(f"endpoint port {endpoint.get('port')!r} is not the Service's admin port name {admin_service[1].get('name')!r}")
            if endpoint.get("path", "/metrics") != "/metrics":
                problems.append(f"endpoint path {endpoint.get('path')!r}, expected /metrics")
            credentials = ((endpoint.get("authorization") or {}).get("credentials") or endpoint.get("bearerTokenSecret") or {})
            if not credentials:
                problems.append("endpoint sends no bearer token (authorization.credentials or bearerTokenSecret): /metrics needs it off loopback")
            elif token_key is not None and (credentials.get("name"), credentials.get("key")) != (token_secret, token_key):
                problems.append(f"bearer token from {credentials.get('name')}/{credentials.get('key')}, "
                                f"but admin.token_file is {token_secret}/{token_key}")
        check(monitor_path, "ServiceMonitor: selects the admin Service, scrapes /metrics with the admin token", problems)
    if not monitors and annotations.get("prometheus.io/scrape") != "true":
        fail(directory, "neither a ServiceMonitor nor prometheus.io/scrape annotations")


# ------------------------------------------------------------------------------------------
# Prometheus rules

def check_alerts() -> None:
    for path in sorted((DEPLOY / "prometheus").glob("*.yml")):
        covered.add(path)
        if path.name.endswith(".test.yml"):
            continue          # promtool test rules runs it (scripts/check-deploy.sh)
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            fail(path, f"YAML does not parse: {' '.join(str(error).split())}")
            continue
        problems = []
        names = []
        for group in (document or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                name = rule.get("alert") or rule.get("record")
                names.append(name)
                if "alert" not in rule:
                    continue
                if not rule.get("for"):
                    problems.append(f"{name}: no 'for'")
                if (rule.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problems.append(f"{name}: labels.severity is not critical, warning or info")
                annotations = rule.get("annotations") or {}
                for key in ("summary", "description"):
                    if not annotations.get(key):
                        problems.append(f"{name}: no {key} annotation")
                for metric in re.findall(r"\b(changerelay_[a-z0-9_]+)", str(rule.get("expr", ""))):
                    base = re.sub(r"_(bucket|sum|count)$", "", metric)
                    if metric not in KNOWN_METRICS and base not in KNOWN_METRICS:
                        problems.append(f"{name}: metric {metric} is not among DESIGN.md's names")
                    elif base not in exported_metrics():
                        problems.append(f"{name}: metric {base} is named nowhere in Sources/: the service does not export it")
        if not names:
            problems.append("no rules")
        check(path, f"{len(names)} alerts with for, severity, summary and description over known metric names", problems)


# ------------------------------------------------------------------------------------------
# Containerfile

def instructions(text: str) -> list[tuple[str, str]]:
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        word, _, rest = whole.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


COMPILERS = re.compile(r"^(gcc|g\+\+|clang|cpp|cc|make|cmake|build-essential|binutils|pkg-config|pkgconf|swift.*|swiftlang|.*-dev)(=.*)?$")


def check_containerfile() -> None:
    path = DEPLOY / "container/Containerfile"
    covered.add(path)
    steps = instructions(path.read_text())
    stages: list[dict] = []
    for word, rest in steps:
        if word == "FROM":
            parts = rest.split()
            stages.append({"image": parts[0], "name": parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None, "steps": []})
        elif stages:
            stages[-1]["steps"].append((word, rest))
    problems = []
    if len(stages) < 2:
        problems.append(f"{len(stages)} FROM stage(s), expected a build stage and a runtime stage")
        check(path, "multi-stage build", problems)
        return
    build, final = stages[0], stages[-1]
    if not build["image"].startswith("swift:"):
        problems.append(f"the build stage is {build['image']}, expected the official swift image")
    build_runs = " ".join(rest for word, rest in build["steps"] if word == "RUN")
    for needed in ("libpq-dev", "libcurl4-openssl-dev", "pkg-config", "swift build", "-c release", "--product changerelay", "--static-swift-stdlib"):
        if needed not in build_runs:
            problems.append(f"the build stage does not run/install '{needed}'")
    for word, rest in final["steps"]:
        if word == "COPY" and "--from=" in rest:
            source = re.search(r"--from=(\S+)", rest).group(1)
            if source not in [s["name"] for s in stages[:-1]] and not source.isdigit():
                problems.append(f"COPY --from={source} names no earlier stage")
    check(path, f"{len(stages)} stages: build from {build['image']} (libpq-dev, libcurl4-openssl-dev, pkg-config; release, static Swift stdlib), runtime from {final['image']}", problems)

    problems = []
    if "slim" not in final["image"]:
        problems.append(f"the runtime stage is {final['image']}, expected a slim image")
    installed = []
    for word, rest in final["steps"]:
        if word == "RUN":
            for command in re.split(r"&&|;", rest):
                tokens = command.split()
                if "apt-get" in tokens and "install" in tokens:
                    installed += [t for t in tokens[tokens.index("install") + 1:] if not t.startswith("-")]
    compilers = [p for p in installed if COMPILERS.match(p)]
    if compilers:
        problems.append(f"the runtime stage installs build tools: {', '.join(compilers)}")
    for needed in ("libpq5", "libcurl4", "ca-certificates"):
        if needed not in installed:
            problems.append(f"the runtime stage does not install {needed}")
    users = [rest for word, rest in final["steps"] if word == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append(f"the runtime stage's USER is {users[-1] if users else 'missing'}, expected a numeric non-root uid")
    exposed = " ".join(rest for word, rest in final["steps"] if word == "EXPOSE").split()
    if str(ADMIN_PORT) not in [p.split("/")[0] for p in exposed]:
        problems.append(f"EXPOSE {ADMIN_PORT} missing")
    health = [rest for word, rest in final["steps"] if word == "HEALTHCHECK"]
    health_command = None
    if not health or "CMD" not in health[-1]:
        problems.append("no HEALTHCHECK CMD")
    else:
        exec_form = health[-1].split("CMD", 1)[1].strip()
        try:
            health_command = json.loads(exec_form)
        except json.JSONDecodeError:
            health_command = ["sh", "-c", exec_form]
        if "/healthz" not in exec_form or str(ADMIN_PORT) not in exec_form:
            problems.append(f"the HEALTHCHECK does not ask /healthz on {ADMIN_PORT}")
    for word, expected in (("ENTRYPOINT", ["changerelay"]), ("CMD", ["run", "--config", "/etc/changerelay/changerelay.toml"])):
        found = [rest for w, rest in final["steps"] if w == word]
        try:
            value = json.loads(found[-1]) if found else None
        except json.JSONDecodeError:
            value = found[-1]
        if value != expected:
            problems.append(f"{word} is {value!r}, expected {json.dumps(expected)} (exec form)")
    check(path, f"runtime: {', '.join(installed)} only, USER {users[-1] if users else '?'}, EXPOSE {ADMIN_PORT}, HEALTHCHECK, ENTRYPOINT/CMD", problems)
    if health_command:
        check_health_command(path, health_command)

    ignore = DEPLOY / "container/Containerfile.dockerignore"
    covered.add(ignore)
    patterns = [l.strip() for l in ignore.read_text().splitlines() if l.strip() and not l.startswith("#")]
    problems = [f"does not exclude {p}" for p in (".build", ".git") if p not in patterns]
    problems += [f"excludes {p}, which the build needs" for p in patterns if p.strip("/") in ("Sources", "Tests", "Benchmarks", "sql", "Package.swift", "*")]
    check(ignore, "excludes .build and .git, keeps the sources, sql/ and Package.swift", problems)


def check_health_command(path: Path, command: list[str]) -> None:
    """Runs the image's health check command against a stand-in /healthz on a free loopback port."""
    import http.server
    import socket
    import subprocess
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status = 200 if self.path == "/healthz" else 404
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *arguments) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as probe:            # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    try:
        def run(target_port: int, route: str = "/healthz") -> int:
            argv = [part.replace(str(ADMIN_PORT), str(target_port)).replace("/healthz", route) for part in command]
            try:
                return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode
            except (OSError, subprocess.TimeoutExpired) as error:
                return -1 if isinstance(error, subprocess.TimeoutExpired) else -2
        healthy, not_found, down = run(port), run(port, "/nothing-here"), run(closed)
    finally:
        server.shutdown()
    problems = []
    if healthy != 0:
        problems.append(f"exit {healthy} against a 200 /healthz")
    if not_found == 0:
        problems.append("exit 0 against a 404")
    if down == 0:
        problems.append("exit 0 with nothing listening")
    check(path, "HEALTHCHECK command run against a stand-in server: healthy on 200, unhealthy on 404 and on a closed port", problems)


# ------------------------------------------------------------------------------------------
# Documentation

def check_markdown() -> None:
    for path in sorted(DEPLOY.rglob("*.md")):
        covered.add(path)
        problems = []
        text = path.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            if not (path.parent / target).exists():
                problems.append(f"link to {target} does not resolve")
        check(path, "relative links resolve", problems)
    index = DEPLOY / "README.md"
    text = index.read_text() if index.exists() else ""
    missing = [rel(p.parent if p.parent != DEPLOY else p) for p in sorted(DEPLOY.rglob("*"))
               if p.is_file() and p != index and rel(p)[len("deploy/"):].split("/")[0] not in text]
    check(index, "the index names every file or folder of deploy/", sorted(set(missing)))

    guide = DEPLOY / "supabase/README.md"
    role = (ROOT / "sql/005_role.sql").read_text()
    granted = set()
    for statement in re.findall(r"GRANT [^;]*? ON\s+(public\.[^;]*?)\s+TO changerelay", role, re.S):
        granted.update(re.findall(r"public\.(\w+)", statement))
    publication = re.search(r"sources text\[\] := ARRAY\[(.*?)\]", (ROOT / "sql/004_publication.sql").read_text(), re.S)
    published = set(re.findall(r"'(\w+)'", publication.group(1))) if publication else set()
    guide_text = guide.read_text()
    problems = [f"table {t} (granted in sql/005_role.sql) is not in the guide" for t in sorted(granted) if f"`{t}`" not in guide_text and f"{t}," not in guide_text]
    create = re.search(r"CREATE PUBLICATION changerelay_pub FOR TABLE(.*?);", guide_text, re.S)
    in_guide = set(re.findall(r"public\.(\w+)", create.group(1))) if create else set()
    if in_guide != published:
        problems.append(f"its CREATE PUBLICATION differs from sql/004_publication.sql: missing {sorted(published - in_guide)}, "
                        f"extra {sorted(in_guide - published)}")
    if not granted or not published:
        problems.append("could not read the grants of sql/005_role.sql or the tables of sql/004_publication.sql")
    check(guide, f"names the {len(granted)} tables sql/005_role.sql grants and the {len(published)} sql/004_publication.sql publishes", problems)


def main() -> int:
    check_containerfile()
    check_systemd()
    check_kubernetes()
    check_alerts()
    for path in sorted(DEPLOY.glob("*.toml")):
        covered.add(path)
        check_config(path, path.read_text())
    check_markdown()
    uncovered = [rel(p) for p in sorted(DEPLOY.rglob("*")) if p.is_file() and p not in covered]
    check("deploy/", "every file is covered by a check", [f"{p} is checked by nothing (add a check to scripts/check_deploy.py)" for p in uncovered])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
