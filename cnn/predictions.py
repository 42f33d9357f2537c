"""Turning class probabilities into what ``predict`` shows and writes, for both frameworks."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cnn import atomic
from cnn.data.datasets import get_spec
from cnn.errors import ConfigError

FIELDS = ("file", "class", "probability", "error")


def prediction_rows(files: Sequence[str], probabilities: np.ndarray, classes: Sequence[str],
                    failures: Sequence[tuple[str, str]] = ()) -> list[dict]:
    """One row per input file: its top class and probability, or the error that stopped it."""
    rows = []
    for path, probs in zip(files, probabilities):
        top = int(np.argmax(probs))
        rows.append({"file": path, "class": classes[top], "probability": float(probs[top]),
                     "error": ""})
    rows += [{"file": path, "class": "", "probability": None, "error": error}
             for path, error in failures]
    return rows


def format_table(rows: list[dict]) -> str:
    width = max([len(r["file"]) for r in rows] + [4])
    lines = [f"{'file':<{width}}  {'class':<14} probability"]
    for r in rows:
        if r["error"]:
            lines.append(f"{r['file']:<{width}}  error: {r['error']}")
        else:
            lines.append(f"{r['file']:<{width}}  {r['class']:<14} {r['probability']:.4f}")
    return "\n".join(lines)


def write_rows(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows as CSV or JSON, chosen by the file's suffix; atomically and through a symbolic
    link (``cnn.atomic``)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(rows, indent=2) + "\n"
    elif path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    else:
        raise ConfigError(f"--output must end in .csv or .json, not {path.name!r}")
    atomic.write_text(atomic.output_target(path), text)  # a link stays a link


def predict_class_names(hparams: Mapping, dataset: str) -> tuple[str, ...]:
    """The names ``predict`` reports classes by: the model's own (saved in its checkpoint), else
    those of ``dataset``."""
    return tuple(hparams.get("classes") or get_spec(dataset).classes)


def report_predictions(datamodule, batches: Sequence, classes: Sequence[str],
                       output: str | None) -> list[dict]:
    """Print the predictions of ``datamodule.predict_files`` (and write them to ``output``)."""
    probabilities = (np.concatenate([np.asarray(b) for b in batches])
                     if batches else np.zeros((0, len(classes))))
    files = datamodule.predicted_files or [
        f"{datamodule.dataset}:test[{i}]" for i in range(len(probabilities))]
    rows = prediction_rows(files, probabilities, classes,
                           datamodule.predict_failures)
    print(format_table(rows))
    if output:
        write_rows(rows, output)
    if datamodule.predict_failures:
        print(f"{len(datamodule.predict_failures)} file(s) could not be classified",
              file=sys.stderr)
    return rows
