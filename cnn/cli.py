"""Dispatch: pick the framework's LightningCLI (or its MLX mirror) or a tool, and turn the
errors a user can cause into one line and a non-zero exit."""

from __future__ import annotations

import importlib
import os
import sys

FRAMEWORKS = ("torch", "mlx")
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
TOOLS = {"convert": "cnn.tools.convert", "plot": "cnn.tools.plot", "bench": "cnn.tools.bench"}

USAGE = """usage: python cli.py [--framework torch|mlx] {fit,validate,test,predict} [options]
       python cli.py convert CKPT --to mlx|torch --out FILE
       python cli.py plot LOGDIR --out FILE.png
       python cli.py bench --config CONFIG [--framework torch|mlx|both] [--out FILE.json]

Trainer commands take the same YAML for both frameworks (--config configs/mnist.yaml);
`python cli.py fit --help` lists every option, `--print_config` shows the merged config."""


class UsageError(Exception):
    """A command line we cannot run; the message is the one line to show."""


def pop_framework(argv: list[str], default: str = "torch") -> tuple[str, list[str]]:
    """Take ``--framework X`` / ``--framework=X`` out of ``argv`` wherever it stands."""
    rest, framework, i = [], os.environ.get("CNN_FRAMEWORK", default), 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--framework":
            if i + 1 >= len(argv):
                raise UsageError("--framework needs a value: torch or mlx")
            framework, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--framework="):
            framework = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return framework, rest


# Errors of modules a run may not import (torch runs never load MLX, nor MLX runs Lightning);
# such an error can only have been raised if its module is loaded, so only those are looked up.
FRAMEWORK_ERRORS = (("cnn.mx.checkpoint", "CheckpointError"),
                    ("cnn.mx.trainer", "NonFiniteLossError"),
                    ("cnn.pt.callbacks", "NonFiniteLossError"))
# SystemExit subclasses raised when SIGINT/SIGTERM stopped fit; their code is 128 + signum.
INTERRUPTIONS = (("cnn.mx.trainer", "TrainingInterrupted"),
                 ("cnn.pt.callbacks", "TrainingInterrupted"))


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in names
                 if module in sys.modules)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message alone is what the user needs to read."""
    from argparse import ArgumentError  # what jsonargparse raises for a bad option or value

    from cnn.data.errors import DataError
    from cnn.errors import ConfigError
    return (DataError, ConfigError, FileNotFoundError, ArgumentError, *_loaded(FRAMEWORK_ERRORS))


def interruption_line(stop: BaseException) -> str:
    """``training interrupted by SIGTERM; resume with --ckpt_path FILE`` (or: nothing saved)."""
    checkpoint = getattr(stop, "checkpoint", None)
    hint = (f"resume with --ckpt_path {checkpoint}" if checkpoint
            else "no checkpoint was written for this run")
    return f"{stop}; {hint}"


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def run_trainer_command(framework: str, argv: list[str]) -> int:
    if framework == "torch":
        from cnn.pt.cli import CLI
    else:
        from cnn.mx.cli import CLI
    cli = CLI(args=argv)
    # predict classifies every readable file, then says by its exit status that some were not.
    return 1 if getattr(cli.datamodule, "predict_failures", None) else 0


def main(argv: list[str]) -> int:
    try:
        framework, argv = pop_framework(argv)
        command = argv[0] if argv else None
        if command in TOOLS:
            return importlib.import_module(TOOLS[command]).main(argv[1:], framework)
        if command in ("-h", "--help", None):
            print(USAGE)
            return 0 if command else 2
        if framework not in FRAMEWORKS:
            raise UsageError(f"unknown framework {framework!r}: choose torch or mlx")
        return run_trainer_command(framework, argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as stop:
        if isinstance(stop, _loaded(INTERRUPTIONS)):
            print(f"error: {interruption_line(stop)}", file=sys.stderr)
            return stop.code
        raise
    except Exception as error:  # noqa: BLE001 - narrowed just below
        if isinstance(error, user_errors()):
            print(f"error: {one_line(error)}", file=sys.stderr)
            return 1
        raise
