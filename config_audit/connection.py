"""How a client reaches the local stack: its moto server's endpoint, fake credentials and region.

Light on purpose (it imports no moto): config-audit reads it to talk to a running `make run`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def endpoint_file(project_dir: Path) -> Path:
    """Where `make run` keeps its moto server's endpoint while it serves (removed when it stops)."""
    return Path(os.environ.get("LOCAL_STATE_DIR") or project_dir / ".local") / "endpoint"


def environment(endpoint: str) -> dict[str, str]:
    """The variables that point boto3 in this process at the local stack."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def client_arguments(endpoint: str) -> dict[str, Any]:
    """``boto3.client(...)`` arguments for the local stack."""
    return {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }
