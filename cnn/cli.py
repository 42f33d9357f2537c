"""Dispatch: pick the framework's LightningCLI (or its MLX mirror) or a tool, and turn the
errors a user can cause into one line and a non-zero exit."""

from __future__ import annotations

import importlib
import os
import re
import sys
from argparse import ArgumentError  # what jsonargparse raises for a bad option or value

from cnn.command_line import FRAMEWORKS, CommandLine, UsageError
from cnn.console import end_open_lines, track_line_ends
from cnn.errors import CheckpointError, ConfigError, DataError, Interrupted, NonFiniteLossError, PeerLostError
from cnn.interrupts import hold_signals
from cnn.runs import release_runs
from cnn.subcommands import TRAINER_COMMANDS

TOOLS = {"convert": "cnn.tools.convert", "plot": "cnn.tools.plot", "bench": "cnn.tools.bench",
         "launch": "cnn.tools.launch"}

USAGE = f"""usage: python cli.py [--framework torch|mlx] {{{','.join(TRAINER_COMMANDS)}}} [options]
       python cli.py convert CKPT --to mlx|torch --out FILE
       python cli.py plot LOGDIR --out FILE.png
       python cli.py bench --config CONFIG [--framework torch|mlx|both] [--out FILE.json]
       python cli.py launch [mlx.launch options] fit|validate|test|predict [options]

Trainer commands take the same YAML for both frameworks (--config configs/mnist.yaml);
`python cli.py fit --help` lists every option, `--print_config` shows the merged config."""


# Exception types whose message alone is what the user needs to read.
USER_ERRORS = (DataError, ConfigError, CheckpointError, NonFiniteLossError, PeerLostError,
               FileNotFoundError, ArgumentError)


def interruption_line(stop: Interrupted) -> str:
    """``training interrupted by SIGTERM; resume with --ckpt_path FILE`` (or what was kept)."""
    return f"{stop}; {stop.hint}"


# jsonargparse wraps an error raised while computing a linked value (a dataset's shape or
# classes) in this preamble; the cause after it is the line the user needs.
_LINK_PREAMBLE = re.compile(r"^Call to compute_fn of link .*? with args \(.*?\) failed: ")


def one_line(error: BaseException) -> str:
    return _LINK_PREAMBLE.sub("", " ".join(str(error).split()))


# Packages of the experiment trackers: their errors (a store refused, a server not reached) are
# the user's to fix, whichever side and however deep (jsonargparse wraps them) they were raised.
TRACKER_PACKAGES = ("mlflow", "wandb")


def tracker_error(error: BaseException) -> BaseException | None:
    """The experiment tracker's own exception behind ``error`` (its cause chain), or ``None``."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if type(error).__module__.split(".")[0] in TRACKER_PACKAGES:
            return error
        error = error.__cause__ or error.__context__
    return None


def run_trainer_command(line: CommandLine) -> int:
    from cnn.bounded_yaml import bound_parser_yaml
    from cnn.data.folder import forget_reported

    forget_reported()  # what an earlier command in this process reported is news to this one
    bound_parser_yaml()  # each value and config the parser reads as YAML
    if line.framework == "torch":
        from cnn.pt.cli import CLI
    else:
        from cnn.mx.cli import CLI
    cli = CLI(line)
    # predict classifies every readable file, then says by its exit status that some were not.
    return 1 if getattr(cli.datamodule, "predict_failures", None) else 0


def main(argv: list[str]) -> int:
    with track_line_ends():
        try:
            return _main(argv)
        except KeyboardInterrupt:  # a Ctrl-C that landed while an earlier one was being unwound
            hold_signals()
            end_open_lines()
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            release_runs()  # a command run inside a longer process (a test) leaves no run locked


def _main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["launch"]:  # what follows is the ranks' command line, its own --framework included
            return importlib.import_module(TOOLS["launch"]).main(argv[1:], "mlx")
        line = CommandLine.read(argv)
        command = line.command
        if command in TOOLS:
            return importlib.import_module(TOOLS[command]).main(line.args()[1:], line.framework)
        if command in ("-h", "--help", None):
            print(USAGE)
            return 0 if command else 2
        if line.framework not in FRAMEWORKS:
            raise UsageError(f"unknown framework {line.framework!r}: choose torch or mlx")
        # a mistyped path is told before the framework's import; a piped config is read once
        return run_trainer_command(line.read_configs())
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hold_signals()  # a second Ctrl-C must not interrupt the line that reports the first
        end_open_lines()
        print("interrupted", file=sys.stderr)
        return 130
    except Interrupted as stop:  # a SystemExit, which ``except Exception`` would miss
        hold_signals()
        end_open_lines()  # not glued to a progress bar's line
        print(f"error: {interruption_line(stop)}", file=sys.stderr)
        return stop.code
    except USER_ERRORS as error:
        end_open_lines()
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:  # a file the run reads or writes: a full disk, a read-only folder
        if not error.filename:
            raise
        end_open_lines()
        print(f"error: {os.fsdecode(error.filename)}: {error.strerror or error}", file=sys.stderr)
        return 1
    except Exception as error:
        tracker = tracker_error(error)
        if tracker is None:
            raise
        print(f"error: {type(tracker).__module__.split('.')[0]}: {one_line(tracker)}", file=sys.stderr)
        return 1
