"""The servers tests start as a user would (``tensorboard``, ``mlflow server``): each on a free
local port, its answers polled until they hold what the test waits for, and stopped with SIGTERM
when the test's block ends."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    """Whether anything accepts a connection on ``port`` of this host."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def serving(argv: list[str], env: Optional[dict[str, str]] = None) -> Iterator[subprocess.Popen]:
    """``python argv`` running, its output discarded, for the block; then SIGTERM, and
    ``TimeoutExpired`` if it outlives that by 30 s."""
    server = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def tensorboard_server(logdir: Path) -> Iterator[str]:
    """A real ``tensorboard`` serving ``logdir`` (read anew every second) for the block: its base
    URL."""
    port = free_port()
    with serving(["-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
                  "--load_fast", "false", "--reload_interval", "1"]):
        yield f"http://127.0.0.1:{port}"


def poll(fetch: Callable[[], Any], ready: Callable[[Any], bool], seconds: float, empty: Any = None) -> Any:
    """``fetch()`` every half second until ``ready`` holds for what it returned or ``seconds`` have
    passed (a connection error counts as ``empty``); what it returned last."""
    deadline, got = time.monotonic() + seconds, empty
    while time.monotonic() < deadline and not ready(got):
        try:
            got = fetch()
        except OSError:
            pass
        if not ready(got):
            time.sleep(0.5)
    return got


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def post_json(url: str, body: dict) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)
