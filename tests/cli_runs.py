"""Running the real command line from tests, and reading back what it logged.

``run_cli`` calls ``cnn.cli.main(argv)`` in the test process, as Lightning's own tests call
``LightningCLI``: what the command printed on stdout and stderr (file descriptors included, so
C-level output too) and its exit status come back as a ``CliResult``, and the process-wide state
a run may change is put back afterwards (``_process_state``), so the next run starts as a
fresh ``python cli.py`` would. ``run_cli_process`` starts a real ``python cli.py``, for the few
tests where a process boundary is what they test (signals, launchers, start-up imports).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

from cnn.tools.events import run_dirs

ROOT = Path(__file__).resolve().parents[1]

def short_run(*, config: str | None = "configs/mnist.yaml", epochs: int | None = 1, train_batches=2,
              val_batches=1, test_batches=1, batch_size: int | None = 32, eval_batch_size: int | None = 100,
              log_every: int | None = None, val_fraction: float | None = 0.01,
              progress_bar: bool = False) -> tuple[str, ...]:
    """The options of a short run that still fits, validates and tests: ``config`` (first, so
    the rest overrides it), ``epochs`` of ``train_batches`` (a count, or a fraction as Lightning
    takes it), ``val_batches`` and ``test_batches`` of validation and test, the two batch sizes,
    a ``train/loss`` every ``log_every`` steps, a validation split of ``val_fraction`` (600
    MNIST images: the train-accuracy pass at each epoch's end reads as many train images as
    the split holds, whatever ``val_batches`` says). ``None`` leaves a value to the config.

    The rule for a test's fit: take these options and change only what the assertion needs
    (a count of steps, epochs, a log interval); a test that only reads what a fit wrote shares
    one fit (a module fixture, or conftest's ``short_fits``) instead of running its own."""
    options = {"--config": config, "--trainer.max_epochs": epochs,
               "--trainer.limit_train_batches": train_batches, "--trainer.limit_val_batches": val_batches,
               "--trainer.limit_test_batches": test_batches, "--trainer.log_every_n_steps": log_every,
               "--data.batch_size": batch_size, "--data.eval_batch_size": eval_batch_size,
               "--data.val_fraction": val_fraction,
               "--trainer.enable_progress_bar": None if progress_bar else "false"}
    return tuple(arg for name, value in options.items() if value is not None for arg in (name, str(value)))


# The short fit of configs/mnist.yaml that tests share (conftest's ``short_fits``). Dropout 0
# and a small lr keep the two frameworks comparable step by step; 2 epochs of 10 batches with a
# train/loss written every 3 steps exercise Lightning's step rule across an epoch boundary.
SHORT_FIT_STEPS_PER_EPOCH, SHORT_FIT_EPOCHS, SHORT_FIT_LOG_EVERY = 10, 2, 3
SHORT_FIT_VAL_IMAGES, SHORT_FIT_VAL_FRACTION = 1000, 0.02  # the split's 1,200 hold the 1,000
SHORT_FIT = ("--model.dropout", "0", "--model.lr", "1e-4",
             *short_run(config=None, epochs=SHORT_FIT_EPOCHS, train_batches=SHORT_FIT_STEPS_PER_EPOCH,
                        val_batches=2, test_batches=2, log_every=SHORT_FIT_LOG_EVERY, batch_size=64,
                        eval_batch_size=SHORT_FIT_VAL_IMAGES // 2, val_fraction=SHORT_FIT_VAL_FRACTION,
                        progress_bar=True))

# Signals a run (Lightning's SignalConnector, the MLX Trainer, FaultGuard) may take over.
_HANDLED_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None),
                                     getattr(signal, "SIGUSR2", None), getattr(signal, "SIGHUP", None))
                         if s is not None)


@dataclass(frozen=True)
class CliResult:
    """What one command line did: its exit status and everything it printed on each stream."""

    returncode: int
    stdout: str
    stderr: str


def _exit_status(stop: SystemExit) -> int:
    """The status python gives ``sys.exit(code)``: None is 0, a number itself, anything else
    (a message, printed on stderr) 1."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # as python prints an unfiltered warning, on the stderr of the moment (the captured one)
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextlib.contextmanager
def _process_state(cwd: Path, argv: list[str]):
    """Run the body as ``python cli.py ARGV`` in ``cwd`` would start, then put back everything
    process-wide a run may change: working directory, ``sys.argv``, environment (seed_everything
    writes ``PL_GLOBAL_SEED``), signal handlers, warnings filters, the level and handlers of each
    logger that existed before (a module the run imported keeps its loggers, as it stays imported),
    the random states of python, numpy and torch, MLX's default device and torch's global switches."""
    saved_cwd, saved_argv, saved_env = os.getcwd(), sys.argv[:], dict(os.environ)
    saved_signals = {s: signal.getsignal(s) for s in _HANDLED_SIGNALS}
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    saved_loggers = [(lg, lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers]
    saved_random = random.getstate()
    np = sys.modules.get("numpy")
    saved_numpy = np.random.get_state() if np else None
    torch = sys.modules.get("torch")
    saved_torch = torch and (torch.random.get_rng_state(), torch.get_num_threads(),
                             torch.are_deterministic_algorithms_enabled(),
                             torch.is_deterministic_algorithms_warn_only_enabled(),
                             torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark,
                             torch.backends.cudnn.deterministic, torch.get_default_dtype())
    mx = sys.modules.get("mlx.core")
    saved_device = mx and mx.default_device()
    os.chdir(cwd)
    sys.argv = [str(ROOT / "cli.py"), *argv]
    try:
        with warnings.catch_warnings():
            # python's own filters for a script (no -W), not the test session's
            warnings.resetwarnings()
            warnings.simplefilter("default", DeprecationWarning, append=False)
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category, append=True)
            warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
            warnings.showwarning = _show_warning
            yield
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        for signum, handler in saved_signals.items():
            signal.signal(signum, handler)
        for lg, level, handlers, propagate, disabled in saved_loggers:
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled
        random.setstate(saved_random)
        if saved_numpy is not None:
            np.random.set_state(saved_numpy)
        if saved_torch:
            (rng, threads, deterministic, warn_only, precision, benchmark, cudnn_deterministic,
             dtype) = saved_torch
            torch.random.set_rng_state(rng)
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
            torch.set_float32_matmul_precision(precision)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, cudnn_deterministic
            torch.set_default_dtype(dtype)
        if saved_device:  # MLX's key is opaque; each MLX run seeds it (seed_everything) anyway
            mx.set_default_device(saved_device)


@contextlib.contextmanager
def _captured_streams():
    """stdout and stderr, python's and the file descriptors beneath them, into two files (read
    back as ``streams["stdout"]``, ``streams["stderr"]`` once the block ends)."""
    streams: dict[str, str] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        saved_sys = sys.stdout, sys.stderr
        for stream in saved_sys:
            stream.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(1), "wb"), write_through=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(2), "wb"), write_through=True)
        # handlers made at import (Lightning's, on the stderr of that moment) write where a
        # fresh process's would: on this command's stderr
        # (and one left on a stream since closed: an earlier test's captured stderr, which it was
        # given after a run made it; a fresh process would write it on stderr)
        moved = []
        for lg in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
            for handler in getattr(lg, "handlers", ()):
                closed = getattr(getattr(handler, "stream", None), "closed", False)
                if type(handler) is logging.StreamHandler and (closed or handler.stream in (
                        *saved_sys, sys.__stderr__, sys.__stdout__)):
                    moved.append((handler, saved_sys[1] if closed else handler.stream))
                    if closed:  # setStream would flush the closed stream
                        handler.stream = sys.stderr
                    else:
                        handler.setStream(sys.stderr if handler.stream in (saved_sys[1], sys.__stderr__)
                                          else sys.stdout)
        try:
            yield streams
        finally:
            for handler, stream in moved:
                handler.setStream(stream)
            # a handler made during the run (a module it imported) would keep writing to this
            # run's closed streams: it gets the streams a module imported here would have got
            for lg in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
                for handler in getattr(lg, "handlers", ()):
                    if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr):
                        handler.setStream(saved_sys[0] if handler.stream is sys.stdout else saved_sys[1])
            sys.stdout.close()
            sys.stderr.close()
            sys.stdout, sys.stderr = saved_sys
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            for name, file in (("stdout", out), ("stderr", err)):
                file.seek(0)
                streams[name] = file.read().decode(errors="replace")


def run_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> CliResult:
    """``python cli.py ARGS`` run in this process by ``cnn.cli.main``, with ``env`` added to the
    environment: its exit status and what it printed. An exception the CLI lets through ends as
    it would in python: a traceback on stderr and status 1."""
    from cnn.cli import main

    with _captured_streams() as streams, _process_state(cwd, list(args)):
        os.environ.update(env or {})
        try:
            status = main(list(args))
        except SystemExit as stop:
            status = _exit_status(stop)
        except Exception:  # noqa: BLE001  (what python does with it, so the test sees it)
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
    return CliResult(status, streams["stdout"], streams["stderr"])


def run_cli_process(*args: str, cwd: Path = ROOT, timeout: int = 600, **popen) -> subprocess.CompletedProcess:
    """``python cli.py ARGS`` in a new process, as a user would type it (``popen``: e.g. ``env``):
    for tests of what only a process shows (signals, launchers, what is imported at start-up)."""
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **popen)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 180) -> None:
    """Return once ``path`` exists: the marker a process writes when the work a test is about to
    interrupt is under way. Fails at once if ``process`` ended first (with its stderr), and after
    ``timeout`` seconds, a bound on a hung run, never the test's expectation of how fast it goes."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def fit_both(logs: Path, *args: str, config: str = "configs/mnist.yaml") -> dict[str, Path]:
    """``fit`` with each framework into ``logs``; the run directory of each (and what each
    printed on stderr in ``logs/<framework>.stderr``)."""
    runs = {}
    for framework in ("torch", "mlx"):
        result = run_cli("fit", "--config", config, "--framework", framework,
                         "--trainer.default_root_dir", str(logs),
                         "--trainer.enable_progress_bar", "false", *args)
        assert result.returncode == 0, f"{framework}: {result.stderr[-4000:]}"
        (logs / f"{framework}.stderr").write_text(result.stderr)  # for tests of what a run prints
        (runs[framework],) = [d for d in run_dirs(logs) if d.parent.name == framework]
    return runs
