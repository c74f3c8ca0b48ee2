"""A Chalice project's stages, as `.chalice/config.json` gives them to the functions.

The project is a directory (``--project-dir``, the current one by default), never this package's
own location, so an installed ``config-audit`` works wherever the operator keeps the project.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class UnknownStage(KeyError):
    """The project has no such stage, no .chalice/config.json, or one Chalice could not read."""


def config_path(project_dir: Path) -> Path:
    return project_dir / ".chalice" / "config.json"


def _variables(where: str, holder: dict[str, Any], path: Path) -> dict[str, str]:
    """``holder``'s environment_variables: an object of strings, as Chalice requires."""
    variables = holder.get("environment_variables", {})
    if not isinstance(variables, dict):
        raise UnknownStage(f"{path}: the environment_variables of {where} are not a JSON object")
    for name, value in variables.items():
        if not isinstance(value, str):
            raise UnknownStage(f"{path}: {name} of {where} is {json.dumps(value)[:40]}, not a string")
    return variables


def stage_environment(stage: str, project_dir: Path) -> dict[str, str]:
    """The environment variables Chalice gives a stage's functions (top level, then stage);
    UnknownStage names the file and what is wrong with it."""
    path = config_path(project_dir)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnknownStage(f"{path} does not exist: is {project_dir} a Chalice project (--project-dir)?") from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, unreadable, not UTF-8
        raise UnknownStage(f"{path} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    except ValueError as error:  # json.JSONDecodeError
        raise UnknownStage(f"{path} is not JSON: {error}") from None
    except RecursionError:  # a JSON text nested deeper than Python's parser goes
        raise UnknownStage(f"{path} is not a Chalice config: it is nested too deep") from None
    if not isinstance(config, dict):
        raise UnknownStage(f"{path} is not a Chalice config: it holds no JSON object")
    stages = config.get("stages", {})
    if not isinstance(stages, dict) or stage not in stages:
        raise UnknownStage(f"stage {stage!r} is not in {path}")
    if not isinstance(stages[stage], dict):
        raise UnknownStage(f"{path}: stage {stage!r} is not a JSON object")
    return {
        **_variables("the project", config, path),
        **_variables(f"stage {stage!r}", stages[stage], path),
    }
