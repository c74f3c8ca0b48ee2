"""`make run`: the local stack, long-lived, until Ctrl-C: a moto server, the poller and the history
API on 127.0.0.1:8000 (``CHALICE_LOCAL_PORT``), each a thread of this one process, on the local
stage (the dev stage's variables, and a composite-key table audited beside the seed's).

One process on purpose: whatever ends it (Ctrl-C, a crash, a kill -9) ends every part with it,
so no `chalice local` is left serving 503s against a dead moto. The history API is the server
`chalice local` runs (``chalice.local``), with the stage's variables applied as it applies them.
The operator's stdout holds the banner and the last word; everything else goes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from config_audit.connection import endpoint_file
from local.demo import FLAG_KEY_TEXT, FLAGS, quiet_logs
from local.stack import LOCAL_STAGE, ROOT, LocalStack

HOST = "127.0.0.1"
PORT_VARIABLE = "CHALICE_LOCAL_PORT"


class CannotRun(Exception):
    """`make run` cannot start or go on; the message is the one line the operator sees."""


def one_line(text: object) -> str:
    """``text`` on one line (an error's message may hold newlines, an HTML page even)."""
    return " ".join(str(text).split())


def api_port(environ: Mapping[str, str]) -> int:
    """The history API's port, from ``CHALICE_LOCAL_PORT`` (8000 where unset)."""
    text = environ.get(PORT_VARIABLE, "8000")
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise CannotRun(f"{PORT_VARIABLE}={text!r} is not a port number (1-65535)")
    return int(text)


class HistoryApi:
    """The app's routes served as `chalice local` serves them, from a thread of this process."""

    def __init__(self, stage: str, port: int) -> None:
        from chalice.cli import create_local_server
        from chalice.cli.factory import CLIFactory

        # as `chalice local` does: the stage's variables go into os.environ when the app loads
        factory = CLIFactory(str(ROOT), environ=os.environ)
        try:
            self._server = create_local_server(factory, HOST, port, stage)  # binds the port
        except OSError as error:
            raise CannotRun(
                f"cannot serve the history API on {HOST}:{port}: {error.strerror or error}; "
                f"set {PORT_VARIABLE} to a free port"
            ) from error
        self.thread = threading.Thread(target=self._server.server.serve_forever, name="history-api", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self._server.shutdown()
        self._server.server.server_close()


def watch(parts: Mapping[str, threading.Thread], stopping: threading.Event) -> str | None:
    """Wait for ``stopping`` (None) or for a part's thread to end (that part's name)."""
    while not stopping.wait(0.5):
        for name, thread in parts.items():
            if not thread.is_alive():
                return name
    return None


def publish(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader finds the whole text or no file, never less."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a plain write truncates first: a reader in between found it empty (`config-audit --local`
    # then read no endpoint, and went to AWS), so the text is written aside, then renamed
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as aside:
        aside.write(text)
    os.replace(aside.name, path)


def banner(stack: LocalStack, port: int) -> str:
    tables = ", ".join(f"{table.source} -> {table.trail}" for table in stack.audited)
    flags = (  # the history of a composite key: the key as text, URL-encoded
        f"\n  curl 'http://{HOST}:{port}/audit/{urllib.parse.quote(FLAG_KEY_TEXT, safe='')}?table={FLAGS}'"
        if FLAGS in stack.stream_arns
        else ""
    )
    return f"""
moto (DynamoDB, Streams, SNS, SQS, S3)  {stack.endpoint}
history API (as chalice local)      http://{HOST}:{port}  (IAM authorization is not checked locally)
poller                              feeding audit_producer from every audited table: {tables}

Make a change and look at its history:
  .venv/bin/config-audit --local put CACHE_TTL_SEC 3600
  .venv/bin/config-audit --local put CACHE_TTL_SEC 1800
  .venv/bin/config-audit --local history CACHE_TTL_SEC
  .venv/bin/config-audit --local rollback CACHE_TTL_SEC --to <a time from the history>
  .venv/bin/config-audit --local verify                 # every entry against its digest
  curl http://{HOST}:{port}/audit/CACHE_TTL_SEC{flags}

Ctrl-C stops everything."""


def serve(port: int, stopping: threading.Event, answer: TextIO, failures: Mapping[str, str]) -> None:
    """Run every part until ``stopping`` is set; CannotRun when a part ends on its own."""
    with LocalStack(LOCAL_STAGE) as stack:
        stack.use_stage_environment()  # restored when the stack stops
        api = HistoryApi(stack.stage, port)  # a taken port fails here, before anything serves
        running = endpoint_file(ROOT)
        try:
            stack.start_poller()
            api.start()
            parts = {**stack.threads(), "the history API": api.thread}
            publish(running, stack.endpoint)
            print(banner(stack, port), file=answer, flush=True)
            dead = watch(parts, stopping)
        finally:
            running.unlink(missing_ok=True)
            api.stop()
    if dead is not None:
        why = failures.get(parts[dead].name)
        raise CannotRun(f"{dead} stopped{f' ({why})' if why else ''}; everything else has been stopped")


@contextlib.contextmanager
def answers_only_on_stdout() -> Iterator[TextIO]:
    """Yield the real stdout; meanwhile whatever else writes to stdout reaches stderr.

    At the file descriptor: Powertools' logger holds sys.stdout from import time, its metrics and
    chalice print there, and none of that is the operator's answer.
    """
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    answer = open(real, "w", encoding="utf-8", closefd=False)  # noqa: SIM115 - closed below, after the last flush
    try:
        yield answer
    finally:
        answer.flush()
        sys.stdout.flush()
        os.dup2(real, 1)
        answer.close()
        os.close(real)


def main() -> int:
    try:
        port = api_port(os.environ)
    except CannotRun as error:
        print(f"make run: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    failures: dict[str, str] = {}  # thread name -> why it ended, for the one line that says so
    previous_hook = threading.excepthook
    previous_handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def record(args: Any) -> None:
        failures[getattr(args.thread, "name", "")] = f"{args.exc_type.__name__}: {one_line(args.exc_value)}"

    threading.excepthook = record  # a part that dies is reported in one line, not a traceback
    for sig in previous_handlers:
        signal.signal(sig, lambda *_: stopping.set())
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")  # in the banner
    try:
        with answers_only_on_stdout() as answer:
            quiet_logs()  # its lines go to stdout, which is stderr here
            serve(port, stopping, answer, failures)
    except CannotRun as error:
        print(f"make run: {one_line(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # the operator gets one line, not a traceback
        print(f"make run: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return 1
    finally:
        threading.excepthook = previous_hook
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
