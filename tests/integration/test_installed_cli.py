"""config-audit installed as a user installs it (not editable) works from any directory, and the
operator's package never loads the developer-only folders (local/, infra/) just by being imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # built from a copy, so that the build leaves nothing behind in the checkout
    source = tmp_path_factory.mktemp("source") / "project"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", ".local", "build", "*.egg-info"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(source)],
        check=True, timeout=300, capture_output=True, cwd=target,
    )  # fmt: skip
    return target


def command(installed: Path, elsewhere: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}  # the installed copy, not this checkout
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        [str(installed / "bin" / "config-audit"), *argv],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_installed_config_audit_answers_help_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    done = command(installed, tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: config-audit") and "--project-dir" in done.stdout
    assert str(ROOT) not in done.stdout + done.stderr


def test_an_installed_config_audit_names_the_missing_project_in_one_line(installed: Path, tmp_path: Path) -> None:
    done = command(installed, tmp_path, "history", "K")
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr
        == f"config-audit: {tmp_path}/.chalice/config.json does not exist: is {tmp_path} a Chalice project (--project-dir)?\n"
    )


def test_importing_the_operators_package_loads_neither_local_nor_infra() -> None:
    probe = "import sys, config_audit.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'local', 'infra', 'app', 'moto'}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
