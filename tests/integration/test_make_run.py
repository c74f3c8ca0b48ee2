"""`make run` (python -m local.run): serves until Ctrl-C, answers only on stdout, and leaves nothing
running however it ends."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from config_audit.connection import client_arguments
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CLI = [str(Path(sys.executable).with_name("config-audit")), "--local"]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refuses(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True  # an HTTP answer all the same
    except OSError:
        return False
    return True


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # the command name, in parentheses, may hold spaces: the fields after it are fixed
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@dataclass
class MakeRun:
    process: subprocess.Popen[bytes]
    port: int
    state: Path
    stdout: Path
    stderr: Path
    env: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60)

    def serving(self) -> bool:
        return (self.state / "endpoint").exists() and answers(f"http://127.0.0.1:{self.port}/audit/ANY")

    def dynamodb(self) -> Any:
        """A DynamoDB client of the moto server this `make run` serves, as any program would make one."""
        return boto3.client("dynamodb", **client_arguments((self.state / "endpoint").read_text()))


@contextlib.contextmanager
def make_run(tmp_path: Path, port: int, *command: str) -> Iterator[MakeRun]:
    """`make run` (or ``python *command``) as a subprocess, its stdout and stderr kept apart in
    files (pipes could fill up)."""
    state = tmp_path / "state"
    env = {**os.environ, "LOCAL_STATE_DIR": str(state), "CHALICE_LOCAL_PORT": str(port)}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    argv = [sys.executable, *(command or ("-m", "local.run"))]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        yield MakeRun(process, port, state, out, err, env)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_make_run_serves_until_interrupted_and_the_cli_reads_the_history(tmp_path: Path) -> None:
    with make_run(tmp_path, free_port()) as run:
        wait_until(run.serving)
        subprocess.run([*CLI, "put", "CACHE_TTL_SEC", "3600"], cwd=ROOT, env=run.env, check=True, timeout=60)
        subprocess.run([*CLI, "put", "CACHE_TTL_SEC", "1800"], cwd=ROOT, env=run.env, check=True, timeout=60)
        wait_until(lambda: "3600 -> 1800" in run.cli("history", "CACHE_TTL_SEC").stdout)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        latest = run.cli("at", "CACHE_TTL_SEC", now).stdout
        assert latest.strip() == '{"key": "CACHE_TTL_SEC", "value": 1800}'
        # the CLI's writes reached actor_recorder as CloudTrail would deliver them: who is known
        assert "arn:aws:sts::123456789012:user/moto (cloudtrail)" in run.cli("history", "CACHE_TTL_SEC").stdout

        # and the history API serves the same history over HTTP
        url = f"http://127.0.0.1:{run.port}/audit/CACHE_TTL_SEC?limit=1"
        with urllib.request.urlopen(url, timeout=30) as response:
            page = json.loads(response.read())
        assert [(e["oldValue"], e["newValue"]) for e in page["entries"]] == [(3600, 1800)]
        assert page["entries"][0]["actor"]["source"] == "cloudtrail"
        assert page["next"]

        # a change of the composite-key table audited beside the seed's is served from its own trail
        flag = {"pk": {"S": "tenant-1"}, "sk": {"S": "flag#dark-mode"}}
        run.dynamodb().put_item(TableName="FeatureFlags", Item={**flag, "enabled": {"BOOL": True}})
        key = urllib.parse.quote('{"pk":"tenant-1","sk":"flag#dark-mode"}', safe="")
        flags_url = f"http://127.0.0.1:{run.port}/audit/{key}?table=FeatureFlags"

        def flag_entries() -> list[dict[str, Any]]:
            with urllib.request.urlopen(flags_url, timeout=30) as response:
                return list(json.loads(response.read())["entries"])

        wait_until(lambda: flag_entries() != [])
        [created] = flag_entries()
        assert created["newValue"] == {"pk": "tenant-1", "sk": "flag#dark-mode", "enabled": True}

        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(60) == 0, run.stderr.read_text()
    assert run.stdout.read_text().rstrip().endswith("stopped")
    assert not (run.state / "endpoint").exists()


def test_make_run_prints_only_its_banner_on_stdout_and_its_logs_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a developer who asked for the function's metrics
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    with make_run(tmp_path, free_port()) as run:
        wait_until(run.serving)
        # WHEN a change is audited and its history served over HTTP
        assert run.cli("put", "NOISE", "1").returncode == 0
        wait_until(lambda: '"NOISE"' in run.cli("history", "NOISE").stdout)
        assert answers(f"http://127.0.0.1:{run.port}/audit/NOISE")
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(60) == 0
    # THEN stdout holds the banner and the last word, and nothing else
    out = run.stdout.read_text()
    banner, rest = out.split("Ctrl-C stops everything.\n")
    assert rest == "stopped\n"
    banner_line = re.compile(r"|(moto |history API |poller |Make a change|  \.venv/bin/config-audit |  curl ).*")
    assert all(banner_line.fullmatch(line) for line in banner.splitlines()), banner
    assert "{" not in out and "Warning" not in out and "Serving on" not in out
    # and what was logged went to stderr: the poller's line and the function's metrics (EMF)
    err = run.stderr.read_text()
    assert "local.poller: batch of 1 records" in err and '{"_aws":' in err


# `make run` on a slow disk: a file it writes exists, empty, for a second before its text is in
SLOW_DISK = """
import pathlib, sys, time
from local import run

def slow_write_text(self, data, *args, **kwargs):
    with self.open("w") as file:
        file.flush()
        time.sleep(1.0)
        return file.write(data)

pathlib.Path.write_text = slow_write_text
sys.exit(run.main())
"""


def test_a_reader_of_the_endpoint_file_finds_the_whole_endpoint_or_no_file_never_less(tmp_path: Path) -> None:
    # GIVEN `make run` starting on a slow disk, WHEN a reader (config-audit --local) keeps reading its endpoint file
    with make_run(tmp_path, free_port(), "-c", SLOW_DISK) as run:
        endpoint, seen = run.state / "endpoint", set()
        deadline = time.monotonic() + 120
        while "Ctrl-C stops everything." not in run.stdout.read_text():  # the banner: the file is written
            assert time.monotonic() < deadline and run.process.poll() is None, run.stderr.read_text()
            with contextlib.suppress(FileNotFoundError):
                seen.add(endpoint.read_text())
            time.sleep(0.005)
        seen.add(endpoint.read_text())
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(60) == 0
    # THEN it only ever read the endpoint, whole: an empty file would have sent the CLI to AWS
    assert len(seen) == 1 and re.fullmatch(r"http://127\.0\.0\.1:\d+", seen.pop())


def test_a_poison_record_is_logged_once_on_make_runs_stderr(tmp_path: Path) -> None:
    with make_run(tmp_path, free_port()) as run:
        wait_until(run.serving)
        # GIVEN an item moto keeps though DynamoDB would refuse it (an empty attribute name): a poison record
        run.dynamodb().put_item(TableName="Configuration", Item={"key": {"S": "ODD"}, "": {"N": "5"}})
        # WHEN a change after it has been audited
        assert run.cli("put", "AFTER", "1").returncode == 0
        wait_until(lambda: '"AFTER"' in run.cli("history", "AFTER").stdout)
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(60) == 0
    # THEN stderr says it was skipped once: the function's JSON line, not that line and a copy of it
    said = [line for line in run.stderr.read_text().splitlines() if "poison record skipped" in line]
    assert len(said) == 1, said
    assert json.loads(said[0])["level"] == "ERROR"


def test_a_kill_9_of_make_run_leaves_nothing_of_it_running(tmp_path: Path) -> None:
    port = free_port()
    with make_run(tmp_path, port) as run:
        wait_until(run.serving)
        moto_port = int((run.state / "endpoint").read_text().rsplit(":", 1)[1])
        children = children_of(run.process.pid)
        try:
            run.process.send_signal(signal.SIGKILL)
            run.process.wait(30)
            # THEN neither the history API nor moto listens any more, and no process it started lives
            wait_until(lambda: refuses(port) and refuses(moto_port), timeout=10)
            assert [pid for pid in children if running(pid)] == []
        finally:
            for pid in children:  # what a failing run left behind, stopped by its PID
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_make_run_with_its_port_taken_says_so_in_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with make_run(tmp_path, port) as run:
            status = run.process.wait(120)
            children = children_of(run.process.pid)
    err = run.stderr.read_text().splitlines()
    assert status != 0
    assert len(err) == 1 and str(port) in err[0] and "CHALICE_LOCAL_PORT" in err[0], err
    assert run.stdout.read_text() == ""
    assert children == [] and not (run.state / "endpoint").exists()


@pytest.mark.parametrize("value", ["http", "0", "70000", ""])
def test_make_run_with_a_port_that_is_no_port_says_so_in_one_line(tmp_path: Path, value: str) -> None:
    env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path), "CHALICE_LOCAL_PORT": value}
    done = subprocess.run(
        [sys.executable, "-m", "local.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "CHALICE_LOCAL_PORT" in done.stderr and repr(value) in done.stderr


# `make run` with one of its parts made to fail once everything is up (its endpoint file written)
DIES = """
import sys, time
import chalice.local, werkzeug.serving
from local import run
from local.poller import StreamPoller

def fail(*_):
    if run.endpoint_file(run.ROOT).exists():
        raise OSError("lost its\\nsocket")  # a message over two lines, said in one

def poller_fails(self):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fail()
        time.sleep(0.1)

if sys.argv[1] == "the history API":
    chalice.local.ThreadedHTTPServer.service_actions = fail
elif sys.argv[1] == "the moto server":
    werkzeug.serving.BaseWSGIServer.service_actions = fail
else:
    StreamPoller.run = poller_fails
sys.exit(run.main())
"""


@pytest.mark.parametrize("part", ["the history API", "the moto server", "the poller"])
def test_when_a_part_of_make_run_dies_the_rest_stops_with_one_line_and_a_failure_status(
    part: str, tmp_path: Path
) -> None:
    env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path), "CHALICE_LOCAL_PORT": str(free_port())}
    done = subprocess.run(
        [sys.executable, "-c", DIES, part], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last == f"make run: {part} stopped (OSError: lost its socket); everything else has been stopped"
    assert done.stdout.endswith("Ctrl-C stops everything.\n")  # the banner, and no "stopped"
    assert not (tmp_path / "endpoint").exists()
