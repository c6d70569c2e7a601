"""The runtime installs cleanly as a wheel: every package listed, every import declared, and a wheel
installed into a fresh venv outside the checkout indexes, searches and runs the demo."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.conftest import write_single_objects

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("clifs", "indexer", "gui")
FIRST_PARTY = {*RUNTIME, "clifs_assets"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _runtime_imports() -> set[str]:
    """Top-level names the runtime packages import (lazy imports included)."""
    names: set[str] = set()
    for package in RUNTIME:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in FIRST_PARTY}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_runtime_package_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for pkg in RUNTIME for p in (ROOT / pkg).rglob("__init__.py")}
    assert on_disk <= listed, f"packages missing from pyproject's [tool.setuptools] packages: {on_disk - listed}"


def _names(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in requirements}


def test_every_import_is_a_declared_dependency():
    project = _pyproject()["project"]
    declared = _names(project["dependencies"]) | _names(project["optional-dependencies"]["cluster"])
    providers = metadata.packages_distributions()
    undeclared = {
        name: providers.get(name)
        for name in _runtime_imports()
        if not any(_canonical(dist) in declared for dist in providers.get(name, [name]))
    }
    assert not undeclared, f"imported but not declared in [project] dependencies: {undeclared}"


def test_ray_is_an_optional_dependency_imported_only_for_the_cluster():
    project = _pyproject()["project"]
    assert "ray" not in _names(project["dependencies"])
    assert "ray" in _names(project["optional-dependencies"]["cluster"])
    importers = set()
    for package in RUNTIME:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                if any(m.split(".")[0] == "ray" for m in modules):
                    importers.add(str(path.relative_to(ROOT)))
    assert importers == {"indexer/cluster.py"}
    # The desktop's way in (the indexer, the service, `clifs index` without --cluster) never loads it.
    code = (
        "import sys, indexer.pipeline, indexer.service, clifs.cli.index, clifs.cli.main; "
        "clifs.cli.main.build_parser(); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_indexes_searches_and_runs_the_demo(tmp_path):
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("clifs-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "clifs_assets/models/shapes-vit-tiny.safetensors" in names
    assert "clifs_assets/demo/queries.json" in names
    assert not [n for n in names if n.startswith(("devkit/", "tests/", "bench/"))]
    metadata_file = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(metadata_file).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    ray = [line for line in requires if re.match(r"Requires-Dist: ray\b", line)]
    assert ray and all('extra == "cluster"' in line for line in ray), ray  # the desktop install does not pull ray

    # A fresh venv with the wheel; its dependencies come from this venv's site-packages as a plain path
    # (a path line in a .pth is not itself scanned for .pth files, so the checkout's editable install stays out).
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )

    work = tmp_path / "elsewhere"
    singles = write_single_objects(work / "photos")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CLIFS_MODEL")}
    env.update(CLIFS_HOME=str(work / "home"), OMP_NUM_THREADS="1")

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc

    where = run(str(python), "-c", "import clifs, clifs_assets; print(clifs.__file__); print(clifs_assets.__file__)")
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout
    assert (
        run(str(python), "-c", "import importlib.util; print(importlib.util.find_spec('devkit'))").stdout.strip()
        == "None"
    )

    clifs = str(venv / "bin" / "clifs")
    summary = json.loads(run(clifs, "index", "photos", "--model", "shapes-vit-tiny", "--json", "--no-progress").stdout)[
        0
    ]
    assert summary["indexed"] == len(singles) and summary["failed"] == []
    hits = json.loads(run(clifs, "search", "a red circle", "--model", "shapes-vit-tiny", "--json").stdout)
    assert hits[0]["path"] == str((work / "photos" / "red_circle.png").resolve())

    env["CLIFS_HOME"] = str(work / "demo-home")
    demo = run(str(python), "-m", "clifs.demo", "--no-gui", "--model", "shapes-vit-tiny").stdout
    assert "indexed 30 new files" in demo and ", 0 failed" in demo, demo
    assert demo.count("\n  ") >= 6  # example searches with their hits
