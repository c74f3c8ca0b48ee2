"""A moto server in a child process on 127.0.0.1 (its own core), stopped by its PID.

``python -m local.moto_process PORT`` runs moto's server with one change for `chalice deploy`:
moto's API Gateway imports only OpenAPI 3 (and requires ``info.description``), while Chalice
sends Swagger 2.0. Here a Swagger 2.0 document is reduced to an OpenAPI 3 one with the same
paths and methods before moto imports it; the rest of the document (integrations, authorizers)
moto would not model anyway. The routes themselves are tested through chalice.test.Client.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Yield the endpoint of a fresh moto_server; stop it (and only it) on the way out."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "local.moto_process", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _openapi3(document: dict[str, Any]) -> dict[str, Any]:
    if not str(document.get("swagger", "")).startswith("2"):
        return document
    info = document.get("info", {})
    paths = {
        path: {
            method: {
                "responses": {"200": {"description": "ok"}},
                **{k: v for k, v in operation.items() if k == "x-amazon-apigateway-integration"},
            }
            for method, operation in operations.items()
            if method in ("get", "put", "post", "delete", "patch", "head", "options")
        }
        for path, operations in document.get("paths", {}).items()
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": info.get("title", ""), "version": info.get("version", "1.0"), "description": ""},
        "paths": paths,
    }


def _serve(port: int) -> None:
    from moto.apigateway import models
    from moto.server import main

    backend = models.APIGatewayBackend
    original_import, original_put = backend.import_rest_api, backend.put_rest_api

    def import_rest_api(self: Any, api_doc: dict[str, Any], fail_on_warnings: bool) -> Any:
        return original_import(self, _openapi3(api_doc), fail_on_warnings)

    def put_rest_api(self: Any, function_id: str, api_doc: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return original_put(self, function_id, _openapi3(api_doc), *args, **kwargs)

    backend.import_rest_api = import_rest_api  # type: ignore[method-assign]
    backend.put_rest_api = put_rest_api  # type: ignore[method-assign]
    main(["-H", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
