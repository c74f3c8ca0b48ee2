"""config-audit installed as a user installs it (not editable) works from any directory, and the
operator's package never loads the developer-only folders (local/, infra/) just by being imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalStack
from tests.conftest import ACTORS, CONFIGURATION, ROOT

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
    for name in ("AWS_ENDPOINT_URL", "LOCAL_STATE_DIR"):
        env.pop(name, None)
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


def test_an_installed_copy_holds_only_the_operators_packages_and_declares_what_they_need(installed: Path) -> None:
    # THEN no generic top-level name (app, local, infra) lands in site-packages beside them
    assert {path.name for path in installed.iterdir() if not path.name.endswith(".dist-info")} == {
        "bin", "config_audit", "chalicelib",
    }  # fmt: skip
    # AND pip installs what `import config_audit.cli` and --local need
    [metadata] = installed.glob("config_audit-*.dist-info/METADATA")
    required = {line.split(":", 1)[1].strip().split(">")[0].split("=")[0].split("<")[0].strip()
                for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")}  # fmt: skip
    assert required == {"boto3", "botocore", "aws-lambda-powertools", "tqdm"}  # tqdm: export's progress bar


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


def test_an_installed_config_audit_writes_on_the_local_stack_from_outside_the_checkout(
    installed: Path, local_stack: LocalStack, tmp_path: Path
) -> None:
    # GIVEN a project whose `make run` is serving (its .local/endpoint), and a shell somewhere else
    project = tmp_path / "project"
    shutil.copytree(ROOT / ".chalice", project / ".chalice")
    (project / ".local").mkdir()
    (project / ".local" / "endpoint").write_text(local_stack.endpoint)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # WHEN the installed command writes with --local, naming the project
    done = command(installed, elsewhere, "--local", "--project-dir", str(project), "put", "INSTALLED", "1")
    # THEN it is written, and CloudTrail's part is played without local/ or app.py
    assert (done.returncode, done.stdout, done.stderr) == (0, "put 'INSTALLED'\n", "")
    assert local_stack.dynamodb.get_item(TableName=CONFIGURATION, Key={"key": {"S": "INSTALLED"}}).get("Item")
    recorded = local_stack.dynamodb.scan(TableName=ACTORS)["Items"]
    assert "Configuration#INSTALLED" in {item["itemKey"]["S"] for item in recorded}  # <table>#<key>
    # AND the same from a shell that does not name the project is one line saying where it looked
    done = command(installed, elsewhere, "--local", "history", "INSTALLED")
    assert (done.returncode, done.stdout) == (1, "")
    assert (
        done.stderr.startswith(f"config-audit: no local stack is running for {elsewhere} ")
        and "--project-dir" in done.stderr
    )
