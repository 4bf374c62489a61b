"""pyproject.toml and environment.yml must describe the same environment.

pip users install from ``pyproject.toml`` (core + the ``book`` and ``test``
extras); Binder and conda users install from ``environment.yml``. These tests
keep the two lists in step: same packages, same lower (and upper) bounds, and
the same Python floor.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
ENVIRONMENT = ROOT / "environment.yml"

EXTRAS = ("book", "test", "sweep")
# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {"pytorch": "torch"}
# Entries of environment.yml that are not project dependencies.
CONDA_ONLY = {"python", "pip"}


def normalize(name: str) -> str:
    """PEP 503 normalisation plus the conda aliases: ``Scikit_Learn`` -> ``scikit-learn``."""
    name = re.sub(r"[-_.]+", "-", name.strip()).lower()
    return CONDA_TO_PYPI.get(name, name)


def bounds(specifier: SpecifierSet) -> tuple[Version | None, Version | None]:
    """The ``>=`` and ``<`` versions of a specifier set (None where absent)."""
    lower = upper = None
    for spec in specifier:
        if spec.operator in (">=", "==", "~="):
            lower = Version(spec.version.rstrip(".*"))
        elif spec.operator == ">":
            lower = Version(spec.version)
        elif spec.operator in ("<", "<="):
            upper = Version(spec.version)
    return lower, upper


def parse_conda_spec(entry: str) -> tuple[str, SpecifierSet]:
    """Split a conda match spec such as ``jupyter-book>=1.0.4,<2`` or ``numpy >=1.24``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*?)\s*", entry)
    if match is None:
        raise ValueError(f"cannot parse conda dependency {entry!r} in {ENVIRONMENT.name}")
    name, spec = match.groups()
    spec = spec.replace(" ", "")
    # conda allows a bare version ("numpy 1.24") meaning "==1.24.*"
    if spec and spec[0].isdigit():
        spec = f"=={spec}"
    return name, SpecifierSet(spec)


def load_pyproject() -> dict:
    with PYPROJECT.open("rb") as fh:
        return tomllib.load(fh)


def load_environment() -> dict:
    with ENVIRONMENT.open() as fh:
        return yaml.safe_load(fh)


def pyproject_requirements() -> dict[str, SpecifierSet]:
    project = load_pyproject()["project"]
    entries = list(project["dependencies"])
    for extra in EXTRAS:
        entries += project["optional-dependencies"][extra]
    reqs: dict[str, SpecifierSet] = {}
    for entry in entries:
        req = Requirement(entry)
        name = normalize(req.name)
        # The same package may appear in two extras; the bounds must agree.
        if name in reqs and bounds(reqs[name]) != bounds(req.specifier):
            raise AssertionError(
                f"{PYPROJECT.name}: {name} appears with different bounds: "
                f"{reqs[name]} and {req.specifier}"
            )
        reqs[name] = req.specifier
    return reqs


def environment_requirements() -> dict[str, SpecifierSet]:
    reqs: dict[str, SpecifierSet] = {}
    for entry in load_environment()["dependencies"]:
        if isinstance(entry, dict):  # the "pip:" section
            for pip_entry in entry.get("pip", []):
                if pip_entry.startswith("-"):  # "-e ." installs the project itself
                    continue
                req = Requirement(pip_entry)
                reqs[normalize(req.name)] = req.specifier
            continue
        name, spec = parse_conda_spec(str(entry))
        if name.lower() in CONDA_ONLY:
            continue
        reqs[normalize(name)] = spec
    return reqs


def fmt(lower: Version | None, upper: Version | None) -> str:
    parts = [f">={lower}" if lower else "no lower bound"]
    if upper:
        parts.append(f"<{upper}")
    return ",".join(parts)


def test_same_packages_and_bounds():
    pip_reqs = pyproject_requirements()
    conda_reqs = environment_requirements()

    problems = []
    for name in sorted(set(pip_reqs) - set(conda_reqs)):
        problems.append(f"  {name}: in pyproject.toml ({pip_reqs[name]}) but not in environment.yml")
    for name in sorted(set(conda_reqs) - set(pip_reqs)):
        problems.append(f"  {name}: in environment.yml ({conda_reqs[name]}) but not in pyproject.toml")
    for name in sorted(set(pip_reqs) & set(conda_reqs)):
        pip_bounds, conda_bounds = bounds(pip_reqs[name]), bounds(conda_reqs[name])
        if pip_bounds != conda_bounds:
            problems.append(
                f"  {name}: pyproject.toml has {fmt(*pip_bounds)}, "
                f"environment.yml has {fmt(*conda_bounds)}"
            )
        if pip_bounds[0] is None:
            problems.append(f"  {name}: no lower bound in pyproject.toml")

    assert not problems, (
        "pyproject.toml (core + extras "
        + ", ".join(EXTRAS)
        + ") and environment.yml disagree:\n"
        + "\n".join(problems)
    )


def test_same_python_floor():
    requires_python = SpecifierSet(load_pyproject()["project"]["requires-python"])
    conda_python = None
    for entry in load_environment()["dependencies"]:
        if isinstance(entry, str) and normalize(parse_conda_spec(entry)[0]) == "python":
            conda_python = parse_conda_spec(entry)[1]
    assert conda_python is not None, "environment.yml does not pin python"
    assert bounds(requires_python)[0] == bounds(conda_python)[0], (
        f"requires-python is {requires_python} but environment.yml has python{conda_python}"
    )


def test_environment_installs_the_project():
    pip_sections = [e["pip"] for e in load_environment()["dependencies"] if isinstance(e, dict)]
    assert any("-e ." in section for section in pip_sections), (
        "environment.yml must end with a pip section that installs the project: '- pip: [-e .]'"
    )


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("numpy>=1.24", ("numpy", (Version("1.24"), None))),
        ("jupyter-book >=1.0.4,<2", ("jupyter-book", (Version("1.0.4"), Version("2")))),
        ("pytorch>=2.4", ("torch", (Version("2.4"), None))),
        ("Scikit_Learn>=1.3", ("scikit-learn", (Version("1.3"), None))),
    ],
)
def test_conda_spec_parser(entry, expected):
    name, spec = parse_conda_spec(entry)
    assert (normalize(name), bounds(spec)) == expected
