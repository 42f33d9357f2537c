"""``python cli.py launch [mlx.launch options] fit|validate|test|predict [options]``: the MLX side's data-parallel
ranks, started by ``mlx.launch``'s own code, with an exit status that says how they ended.

``mlx.launch`` (read from mlx 0.32.4, ``mlx/_distributed_utils/launch.py``) starts one process per rank, relays
their output, and once one has failed sends SIGTERM to the others; but its ``main()`` returns nothing, so the
command exits 0 whatever its ranks did (it only prints ``[WARN] Node with rank R exited with code C``): a script or
a CI job would take a run whose rank died for a success. This command runs the same code (same options, same
output) and exits with the status of the first rank that failed (a rank killed by signal N: 128 + N, as a shell
says it), 0 when every rank ended with 0. A Ctrl-C, which the terminal sends to the ranks too, lets them save
and stop while their last lines and their status still come through (``mlx.launch`` stops relaying at once); a
second one interrupts the launcher.

Two forms: a trainer command (``fit``, ``validate``, ``test``, ``predict`` and their options) runs
``python cli.py --framework mlx <command> ...`` on every rank with this interpreter (``--python`` unless given);
after ``--`` any program runs as ``mlx.launch`` would run it. A ``--backend`` this machine cannot start is one
line before any rank starts (``check_backend``); a rank whose backend did not start says so and exits non-zero
instead of training alone.

What is read of mlx's private module, each checked by ``tests/tools/test_launch.py`` against the installed mlx: the
``ring``, ``nccl`` and ``jaccl`` backends start each rank as a ``RemoteProcess(rank, ...)``, looked up as a module
global when the launch starts, and read its ``exit_status`` (``(returncode, killed)``) once the rank has ended; the
``mpi`` backend runs ``mpirun`` with the module's ``run`` without ``check=True`` (its other calls pass it), and
mpirun's status is the ranks' (untested here: no mpirun on the test machines).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from cnn.errors import ConfigError
from cnn.subcommands import TRAINER_COMMANDS

MLX_LAUNCH = "mlx._distributed_utils.launch"
CLI_SCRIPT = Path(__file__).resolve().parents[2] / "cli.py"


class RankExits:
    """How the ranks of one launch ended, in the order the launcher saw them end: ``(rank, returncode, killed)``;
    ``started``: how many rank processes were started; ``mpirun``: mpirun's returncode (mpi backend)."""

    def __init__(self) -> None:
        self.ended: list[tuple[int, int, bool]] = []
        self.started = 0
        self.mpirun: int | None = None

    def status(self) -> int:
        """The launch's exit status: the first failed rank's (128 + N for a rank killed by signal N); 1 when a
        started rank's end was never seen; 0 when all ended with 0."""
        if self.mpirun is not None:
            return shell_status(self.mpirun)
        for _, returncode, killed in self.ended:
            if returncode != 0 or killed:
                return shell_status(returncode) or 128 + signal.SIGTERM
        return 1 if len(self.ended) < self.started else 0


def shell_status(returncode: int) -> int:
    """A ``Popen.returncode`` as a shell reports it: -N (killed by signal N) is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


@contextlib.contextmanager
def recording_rank_exits() -> Iterator[RankExits]:
    """While inside, every launch by ``mlx.launch``'s code records its ranks' ends in the yielded ``RankExits``."""
    launch = importlib.import_module(MLX_LAUNCH)
    exits, base, run = RankExits(), launch.RemoteProcess, launch.run

    class RecordedRank(base):
        def __init__(self, rank: int, *args: Any, **kwargs: Any) -> None:
            super().__init__(rank, *args, **kwargs)
            self.rank, self.recorded = rank, False
            exits.started += 1

        @property
        def exit_status(self) -> tuple:
            returncode, killed = super().exit_status
            if returncode is not None and not self.recorded:
                self.recorded = True
                exits.ended.append((self.rank, returncode, bool(killed)))
            return returncode, killed

    def recorded_run(command: Any, *args: Any, **kwargs: Any) -> Any:
        result = run(command, *args, **kwargs)
        if not kwargs.get("check"):  # the mpirun of launch_mpi; its look-ups pass check=True
            exits.mpirun = result.returncode
        return result

    launch.RemoteProcess, launch.run = RecordedRank, recorded_run
    try:
        yield exits
    finally:
        launch.RemoteProcess, launch.run = base, run


@contextlib.contextmanager
def parser_errors_raised() -> Iterator[None]:
    """``mlx.launch``'s usage errors (its own ``ArgumentParser``'s, and the hostfile's it reports through it) as a
    ``ConfigError``, which ``cnn.cli`` prints as one line, instead of a usage text and exit 2."""
    error = argparse.ArgumentParser.error

    def raise_it(parser: argparse.ArgumentParser, message: str) -> None:
        raise ConfigError(f"launch: {message}")

    argparse.ArgumentParser.error = raise_it
    try:
        yield
    finally:
        argparse.ArgumentParser.error = error


@contextlib.contextmanager
def ranks_take_the_first_ctrl_c() -> Iterator[None]:
    """A Ctrl-C reaches every process of the terminal's group, the ranks included, which then save and stop
    (exit 130): the launcher lets the first pass, so that it goes on relaying their last lines and their status,
    where mlx.launch would stop relaying at once; a second Ctrl-C interrupts it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def launcher_argv(argv: list[str]) -> list[str]:
    """``mlx.launch``'s arguments for ``argv``: its options up to a trainer command or ``--``; a trainer command
    becomes ``<this python> cli.py --framework mlx <command> ...`` on every rank. Nothing after the command is
    offered to mlx.launch's option parser (its ``--env`` or ``-p`` would take a trainer option's place)."""
    at = next((i for i, arg in enumerate(argv) if arg in TRAINER_COMMANDS or arg == "--"), None)
    if at is None:
        if any(arg in ("-h", "--help", "--print-python") for arg in argv):
            return argv
        raise ConfigError(f"launch: name what every rank runs: one of {', '.join(TRAINER_COMMANDS)} "
                          "(python cli.py launch -n 2 fit --config ...), or -- and a program")
    options, command = argv[:at], argv[at:]
    if command[0] == "--":
        return [*options, *command]
    frameworks = {value for arg, value in zip(command, command[1:]) if arg == "--framework"} \
        | {arg.split("=", 1)[1] for arg in command if arg.startswith("--framework=")}
    if frameworks - {"mlx"}:
        raise ConfigError(f"launch: it starts MLX ranks, not --framework {sorted(frameworks - {'mlx'})[0]}; torch "
                          "starts its own: python cli.py fit --trainer.strategy ddp --trainer.devices N")
    python = [] if any(o == "--python" or o.startswith("--python=") for o in options) else ["--python",
                                                                                              sys.executable]
    return [*options, *python, "--", str(CLI_SCRIPT), "--framework", "mlx", *command]


def option_value(options: list[str], name: str) -> str | None:
    """The value of ``name`` (``--name X`` or ``--name=X``) among mlx.launch's ``options``, None if absent."""
    for i, option in enumerate(options):
        if option == name and i + 1 < len(options):
            return options[i + 1]
        if option.startswith(f"{name}="):
            return option.split("=", 1)[1]
    return None


def check_backend(options: list[str]) -> None:
    """``ConfigError`` (one line) for a ``--backend`` this machine's MLX cannot start, when every rank runs here
    (no ``--hostfile``, no remote ``--hosts``): each rank would get a group of one and train alone. Ranks on other
    hosts check theirs when they start (``cnn.mx.lightning.utilities.distributed.world``)."""
    backend = option_value(options, "--backend")
    hosts = option_value(options, "--hosts")
    if backend is None or option_value(options, "--hostfile") is not None \
            or (hosts is not None and set(hosts.split(",")) - {"127.0.0.1", "localhost"}):
        return
    import mlx.core as mx

    name = "jaccl" if backend == "jaccl-ring" else backend
    try:
        available = mx.distributed.is_available(name)
    except (TypeError, ValueError, RuntimeError):
        return  # a name mlx.launch itself refuses, in its own words
    if not available:
        raise ConfigError(f"launch: the {backend} backend is not available on this machine (this MLX build cannot "
                          "start it); use --backend ring, or leave --backend out")


def main(argv: list[str], framework: str | None = None) -> int:
    """Entry point of ``cli.py launch``: run ``mlx.launch`` on ``argv`` and return its ranks' status.
    ``framework`` is ignored: the ranks run MLX (``--framework mlx`` is added to a trainer command)."""
    try:
        launch = importlib.import_module(MLX_LAUNCH)
    except ImportError as error:
        raise ConfigError(f"launch needs mlx installed ({error})") from None
    arguments = launcher_argv(argv)
    check_backend(arguments[:arguments.index("--")] if "--" in arguments else arguments)
    saved, stdin_blocks = sys.argv, stdin_blocking()
    sys.argv = ["python cli.py launch", *arguments]
    try:
        with parser_errors_raised(), recording_rank_exits() as exits, ranks_take_the_first_ctrl_c():
            launch.main()
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except subprocess.CalledProcessError as error:  # the mpi backend's look-up of mpirun
        raise ConfigError(f"launch: {' '.join(map(str, error.cmd))} failed (exit status {error.returncode}): "
                          "is it installed?") from None
    finally:
        sys.argv = saved
        if stdin_blocks is not None:  # mlx.launch leaves the terminal's stdin non-blocking, which the shell shares
            os.set_blocking(sys.stdin.fileno(), stdin_blocks)
    return exits.status()


def stdin_blocking() -> bool | None:
    """Whether stdin is in blocking mode; None when it has no file descriptor."""
    try:
        return os.get_blocking(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return None
