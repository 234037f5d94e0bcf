"""The lock files pin every dependency pyproject.toml declares, with hashes: what `make run`,
`make test` and the Dockerfile install is exactly what was locked (`make lock` remakes them)."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(path: Path) -> dict[str, str]:
    """{name: version} of a uv/pip-tools lock file, checking every pin carries a hash."""
    pins = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        found = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if found:
            assert "--hash=sha256:" in block, f"{found.group(1)} has no hash in {path.name}"
            pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


RUNTIME = _pins(ROOT / "requirements" / "runtime.txt")
DEV = _pins(ROOT / "requirements" / "dev.txt")


@pytest.mark.parametrize("line", PYPROJECT["project"]["dependencies"])
def test_each_runtime_dependency_is_locked_in_both_files(line):
    requirement = Requirement(line)
    name = canonicalize_name(requirement.name)
    assert name in RUNTIME and name in DEV, f"{name}: run `make lock`"
    assert requirement.specifier.contains(RUNTIME[name]), f"{name}: run `make lock`"
    assert DEV[name] == RUNTIME[name]


@pytest.mark.parametrize("line", PYPROJECT["project"]["optional-dependencies"]["dev"])
def test_each_test_dependency_is_locked(line):
    requirement = Requirement(line)
    name = canonicalize_name(requirement.name)
    assert name in DEV, f"{name}: run `make lock`"
    assert requirement.specifier.contains(DEV[name]), f"{name}: run `make lock`"


def test_the_build_backend_is_locked_too():
    # The project is installed with --no-build-isolation, from the locked setuptools.
    assert "setuptools" in RUNTIME
    backend = Requirement(PYPROJECT["build-system"]["requires"][0])
    assert backend.specifier.contains(RUNTIME["setuptools"])
