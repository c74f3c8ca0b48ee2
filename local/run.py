"""`make run`: the local stack, long-lived, with `chalice local` on 127.0.0.1:8000, until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from local.connection import ENDPOINT_FILE, STATE
from local.demo import quiet_logs
from local.stack import ROOT, LocalStack


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a child started in its own session, and everything it started, by its PID."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    quiet_logs()
    port = int(os.environ.get("CHALICE_LOCAL_PORT", "8000"))
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with LocalStack() as stack:
        STATE.mkdir(exist_ok=True)
        ENDPOINT_FILE.write_text(stack.endpoint)
        stack.start_poller()
        chalice = Path(sys.executable).with_name("chalice")
        api = subprocess.Popen(
            [str(chalice), "local", "--no-autoreload", "--host", "127.0.0.1", "--port", str(port),
             "--stage", stack.stage],
            cwd=ROOT,
            env=dict(os.environ),  # carries AWS_ENDPOINT_URL and the fake credentials
            start_new_session=True,  # its own process group, so stopping it stops all of it
        )  # fmt: skip
        print(
            f"""
moto (DynamoDB, Streams, SNS, SQS)  {stack.endpoint}
chalice local (history API)         http://127.0.0.1:{port}
poller                              feeding audit_producer from {stack.stream_arn}

Make a change and look at its history:
  .venv/bin/config-audit --local put CACHE_TTL_SEC 3600
  .venv/bin/config-audit --local put CACHE_TTL_SEC 1800
  .venv/bin/config-audit --local history CACHE_TTL_SEC
  .venv/bin/config-audit --local rollback CACHE_TTL_SEC --to <a time from the history>
  curl http://127.0.0.1:{port}/audit/CACHE_TTL_SEC

Ctrl-C stops everything.""",
            flush=True,
        )
        try:
            while not stopping.wait(0.5):
                if api.poll() is not None:
                    print(f"chalice local exited with {api.returncode}", file=sys.stderr)
                    break
        finally:
            stop_group(api)
            ENDPOINT_FILE.unlink(missing_ok=True)
    print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
