"""``python cli.py`` on the torch side, without paying Lightning's import at every command line.

A torch command line spends most of its start-up importing torch and Lightning before it reads
its first option, and the suite types dozens of them, most ending in an ``error:`` line.
A zygote is one python per test process that makes exactly the imports ``python cli.py`` makes
for a torch trainer command, then forks a child for each command line. The child is a new
process, like the one a user starts: its own standard streams (files the test reads back), exit
status, working directory, signal dispositions and ``atexit`` handlers; ``__main__`` is
``cli.py`` (DDP's other ranks and spawned workers start from it), and it runs ``cnn.cli.main``
as ``cli.py`` does, and an exception it does not handle prints a traceback and
exits 1 as in any python. Unseeded draws of ``random`` and numpy are seeded afresh in each
child; string hashing is the zygote's (``PYTHONHASHSEED`` cannot change after start-up), so the
order of a set of strings is the same in every child, where fresh processes would differ.

:func:`run` answers ``None`` (the caller then starts a fresh ``python cli.py``) wherever a
forked child could behave differently from a fresh process: another framework or a tool (other
imports), another environment or standard input (read at start-up), a zygote whose imports
printed anything or started a python thread, or a zygote busy with another thread's command.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

from cnn.cli import TRAINER_COMMANDS, UsageError, pop_framework

ROOT = Path(__file__).resolve().parents[1]


class _Zygote:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "tests.cli_zygote"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.unread = b""
        try:
            ready = self.read_reply(timeout=300) or {}
        except RuntimeError:  # its imports failed: the fresh process will show why
            ready = {}
        self.stderr.seek(0)
        # imports that print (a warning a user would see) or leave a python thread behind (which
        # a fork would not copy) make a child unlike a fresh process: then every command runs fresh
        self.faithful = ready.get("threads") == 1 and not self.stderr.read()
        atexit.register(self.close)

    def close(self) -> None:
        self.process.stdin.close()  # the zygote's loop ends at the end of its input
        self.process.wait(timeout=30)
        self.process.stdout.close()
        self.stderr.close()

    def read_reply(self, timeout: float) -> dict | None:
        """The zygote's next line, or ``None`` when none came within ``timeout`` seconds (read
        unbuffered: a buffered reader could hold the line that ``select`` waits for)."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self.unread:
            if not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the cli zygote ended (exit status {self.process.wait()})")
            self.unread += chunk
        line, self.unread = self.unread.split(b"\n", 1)
        return json.loads(line)

    def run(self, args: tuple[str, ...], cwd: Path, timeout: float) -> subprocess.CompletedProcess | None:
        if not self.faithful or self.process.poll() is not None or not self.lock.acquire(blocking=False):
            return None
        try:
            with tempfile.TemporaryDirectory() as streams:
                out, err = Path(streams, "stdout"), Path(streams, "stderr")
                request = {"args": list(args), "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
                self.process.stdin.write(json.dumps(request).encode() + b"\n")
                self.process.stdin.flush()
                pid = self.read_reply(timeout=60)["pid"]
                reply = self.read_reply(timeout)
                if reply is None:
                    os.kill(pid, signal.SIGKILL)  # not yet reaped by the zygote, so still its pid
                    self.read_reply(timeout=60)
                    raise subprocess.TimeoutExpired(["cli.py", *args], timeout)
                status = reply["returncode"]
                return subprocess.CompletedProcess([sys.executable, str(ROOT / "cli.py"), *args], status,
                                                   out.read_text(), err.read_text())
        finally:
            self.lock.release()


_zygote: _Zygote | None = None


def run(args: tuple[str, ...], cwd: Path, timeout: float, popen: dict) -> subprocess.CompletedProcess | None:
    """``python cli.py ARGS`` run by a forked child of the zygote, or ``None`` where it must run fresh."""
    global _zygote
    try:
        framework, rest = pop_framework(list(args))
    except UsageError:  # a fresh process shows it
        return None
    if popen or framework != "torch" or not rest or rest[0] not in TRAINER_COMMANDS:
        return None
    if _zygote is None:
        _zygote = _Zygote()
    return _zygote.run(args, cwd, timeout)


def _child(request: dict) -> None:
    """In the forked child: become ``python cli.py ARGS`` and never return to the zygote's loop."""
    os.chdir(request["cwd"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [str(ROOT / "cli.py"), *request["args"]]
    # unseeded random draws differ from one fresh process to the next; so they do between children
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    # __main__ is cli.py, as for `python cli.py`: Lightning starts DDP's other ranks, and
    # multiprocessing's spawn its workers, by running __main__ again
    main_module = types.ModuleType("__main__")
    main_module.__file__, main_module.__spec__ = sys.argv[0], None
    sys.modules["__main__"] = main_module
    from cnn.cli import main

    sys.exit(main(request["args"]))  # SystemExit unwinds to the interpreter's exit, as in cli.py


def _serve() -> None:
    import cnn.cli  # noqa: F401  (what cli.py imports, then what it imports for a torch command)
    import cnn.pt.cli  # noqa: F401

    # python threads only: importing torch also starts OpenMP's pool, which a fork does not copy
    # and the child starts again at its first parallel region, as in torch's DataLoader workers
    print(json.dumps({"threads": threading.active_count()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:]:  # run again as a program (a launcher re-running __main__): never wait on stdin
        sys.exit(f"tests.cli_zygote takes no arguments, got {sys.argv[1:]}")
    _serve()
