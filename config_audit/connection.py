"""How a client reaches the local stack: its moto server's endpoint, fake credentials and region.

Light on purpose (it imports no moto): config-audit reads it to talk to a running `make run`.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

REGION = "us-east-1"
# The bucket the local stack's poller writes a batch it gives up on into, as Lambda writes its on-failure
# records; `config-audit --local recover` reads it where the stage names no FAILURE_BUCKET.
LOCAL_FAILURE_BUCKET = "config-audit-local-failures"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def endpoint_file(project_dir: Path) -> Path:
    """Where `make run` keeps its moto server's endpoint while it serves (removed when it stops)."""
    return Path(os.environ.get("LOCAL_STATE_DIR") or project_dir / ".local") / "endpoint"


def endpoint_problem(text: str) -> str | None:
    """What keeps ``text`` from being a server's URL, ``http(s)://HOST:PORT`` (port 1-65535); None if it is."""
    if not text:
        return "it is empty"
    if not text.isascii() or not text.isprintable():
        return "it holds characters no URL has"
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:  # a port out of range or not a number
        port = 0
    if url.scheme not in ("http", "https") or not url.hostname:
        return "it is not http://HOST:PORT or https://HOST:PORT"
    if port is None:
        return "it names no port"
    if not 1 <= port <= 65535:
        return "its port is not a number from 1 to 65535"
    if url.path not in ("", "/") or url.query or url.fragment or url.username or url.password:
        return "a server's URL has nothing after HOST:PORT"
    return None


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
