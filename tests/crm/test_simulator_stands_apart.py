"""The simulator stands apart from the client it checks: the hub's code never imports it.

Only its own launcher (``manage.py netserver_simulator``) does; the demo's connection and
``crm_connect`` take the simulator's sign-in from settings.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("crm", "campaigns", "automations", "consent", "leads", "emhub")
LAUNCHER = ROOT / "crm" / "management" / "commands" / "netserver_simulator.py"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                base = ".".join([*package, base] if base else package)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_no_module_of_the_hub_imports_the_simulator():
    simulator_dir = ROOT / "crm" / "simulator"
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if simulator_dir in path.parents or path == LAUNCHER:
                continue
            if any(
                n == "crm.simulator" or n.startswith("crm.simulator.")
                for n in _imported_modules(path)
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_scan_sees_an_import_of_the_simulator():
    # The launcher does import it: the scan above would have found it.
    assert any(n.startswith("crm.simulator") for n in _imported_modules(LAUNCHER))
