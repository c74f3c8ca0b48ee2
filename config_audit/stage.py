"""A Chalice project's stages, as `.chalice/config.json` gives them to the functions.

The project is a directory (``--project-dir``, the current one by default), never this package's
own location, so an installed ``config-audit`` works wherever the operator keeps the project.
"""

from __future__ import annotations

import json
from pathlib import Path


class UnknownStage(KeyError):
    """The project has no such stage (or no .chalice/config.json at all)."""


def config_path(project_dir: Path) -> Path:
    return project_dir / ".chalice" / "config.json"


def stage_environment(stage: str, project_dir: Path) -> dict[str, str]:
    """The environment variables Chalice gives a stage's functions (top level, then stage)."""
    path = config_path(project_dir)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise UnknownStage(f"{path} does not exist: is {project_dir} a Chalice project (--project-dir)?") from None
    if stage not in config.get("stages", {}):
        raise UnknownStage(f"stage {stage!r} is not in {path}")
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }
