"""--local reads the stage `make run` serves: every table of the local stack, not dev's one."""

from __future__ import annotations

import json
from pathlib import Path

from config_audit import cli
from tests.conftest import ROOT


def stage_of(*argv: str) -> str:
    return cli.chosen_stage(cli.parser().parse_args([*argv, "changes"]))


def test_local_without_a_stage_reads_the_local_stage_where_the_project_has_one(tmp_path: Path) -> None:
    project = str(ROOT)
    assert stage_of("--project-dir", project, "--local") == "local"
    assert stage_of("--project-dir", project) == "dev"  # against AWS: dev, as ever
    assert stage_of("--project-dir", project, "--local", "--stage", "dev") == "dev"  # a stage given wins
    # a project with no local stage: dev, with --local too
    (tmp_path / ".chalice").mkdir()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    del config["stages"]["local"]
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    assert stage_of("--project-dir", str(tmp_path), "--local") == "dev"
