"""``python cli.py convert CKPT --to mlx|torch --out FILE``: one side's trained weights for the other.

Reads any checkpoint ``cnn.weights.read_weights`` recognises (by content, not by name): a
Lightning ``.ckpt``, a ``--to torch`` weights file or an MLX checkpoint.

``--out`` is never the input, and an existing file is replaced only with ``--force``.

Outputs, both single ``.safetensors`` files, written atomically, holding no pickle:

* ``--to torch``: tensors ``net.conv1.weight`` ... ``net.fc3.bias`` (or the ResNet's, batch norm
  buffers included), ``mean``, ``std`` (float32; batch counters int64: the torch ``state_dict``
  of ``cnn.pt.module.Classifier``), metadata ``{"cnn": JSON}`` with
  ``format`` (``cnn.schema.CKPT_FORMAT``), ``framework``/``layout`` (``"torch"``), ``dataset``,
  ``in_channels``, ``image_size``, ``num_classes``, ``classes``, ``mean``, ``std``,
  ``hyper_parameters``, ``epoch``, ``global_step``, ``converted_from``;
* ``--to mlx``: an MLX checkpoint as ``cnn.mx.checkpoint.save_checkpoint`` writes it: tensors
  ``model.net.*``, ``model.mean``, ``model.std`` in MLX layout, no optimizer state; its JSON holds
  the same fields as above (``framework``/``layout`` ``"mlx"``) beside ``format_version``.

Only numpy and safetensors are needed, except torch to read a ``.ckpt`` and mlx to write an MLX
checkpoint, both imported when (and only when) such a file is met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from cnn import atomic
from cnn.errors import ConfigError
from cnn.weights import META_KEY, Weights, describe, read_weights


def write_torch_weights(weights: Weights, path: str) -> None:
    """The ``--to torch`` file: torch-layout tensors + ``{"cnn": JSON}`` metadata, atomically."""
    from safetensors.numpy import save

    tensors = {k: np.array(v, order="C") for k, v in weights.torch_state_dict().items()}  # 0-d stays 0-d
    meta = json.dumps(weights.metadata("torch"), default=str)
    atomic.write_bytes(path, save(tensors, metadata={META_KEY: meta}))


def write_mlx_checkpoint(weights: Weights, path: str) -> None:
    """The ``--to mlx`` file, through ``cnn.mx.checkpoint.save_checkpoint`` (atomic)."""
    try:
        from cnn.mx.checkpoint import save_checkpoint  # cnn.mx first: it picks MLX's BLAS

        import mlx.core as mx
    except ImportError as error:
        raise ConfigError(f"writing an MLX checkpoint needs mlx installed ({error})") from None
    state = {k: mx.array(v) for k, v in weights.mlx_state_dict().items()}
    save_checkpoint(path, {**weights.metadata("mlx"), "state_dict": state})


def convert(source: str, to: str, out: str) -> Weights:
    """Read ``source`` (either side) and write ``out`` for framework ``to``; the weights."""
    weights = read_weights(source)
    (write_mlx_checkpoint if to == "mlx" else write_torch_weights)(weights, out)
    return weights


def check_output(source: str, out: str, force: bool) -> None:
    """ConfigError unless ``out`` may be written: never the file being converted (a resumable
    checkpoint would become bare weights), then the rule every output a user names follows
    (``cnn.atomic.check_output``)."""
    if os.path.exists(source) and os.path.exists(out) and os.path.samefile(source, out):
        raise ConfigError(f"--out {out} is the checkpoint being converted; writing it would "
                          "destroy it: choose another file")
    atomic.check_output(out, force, "the .safetensors file")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise SystemExit(f"error: {message}")


def main(argv: list[str], framework: str | None = None) -> int:
    """Entry point of ``cli.py convert``; ``framework`` is ignored (``--to`` names the target).

    Exit 0 after writing ``--out``; 2 for a command line we cannot run; 1 when the checkpoint
    cannot be read or converted (one ``error:`` line on stderr either way).
    """
    parser = _Parser(prog="cli.py convert",
                     description="Convert a checkpoint to the other framework's weights.")
    parser.add_argument("ckpt", help="a Lightning .ckpt, a torch .safetensors or an MLX checkpoint")
    parser.add_argument("--to", required=True, choices=("mlx", "torch"), help="target framework")
    parser.add_argument("--out", required=True, help="the .safetensors file to write")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    try:
        args = parser.parse_args(argv)
        if not args.out.endswith(".safetensors"):
            parser.error(f"--out must end in .safetensors, got {args.out!r}")
    except SystemExit as exit_:  # --help exits 0 after printing; errors carry their line
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
            return 2
        return int(exit_.code or 0)
    try:
        check_output(args.ckpt, args.out, args.force)
        weights = convert(args.ckpt, args.to, atomic.output_target(args.out))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {error.filename or args.out}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {args.to} weights for {describe(weights.hyper_parameters)}, "
          f"trained with {weights.source}")
    return 0
