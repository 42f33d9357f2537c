"""What ``cli.py bench`` reports: repeated readings summarised, ratios, the metadata a reader needs
to trust a figure, the text table, the JSON file and the TensorBoard scalars."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from statistics import median

from cnn import atomic
from cnn.tools.bench_clock import EvalRun, TrainRun
from cnn.tools.bench_plan import Settings

RATIOS = (("MLX compiled / torch plain", ("mlx", "compiled"), ("torch", "plain")),
          ("Lightning / plain", ("torch", "lightning"), ("torch", "plain")),
          ("MLX Trainer compiled / MLX compiled", ("mlx", "trainer_compiled"), ("mlx", "compiled")))
UNITS = {"train_img_per_s": "images/s", "ms_per_step": "ms", "fwd_ms": "ms", "bwd_ms": "ms",
         "first_step_s": "s", "epoch_s": "s", "eval_img_per_s": "images/s", "test_set_s": "s"}


def summarize(values: list[float]) -> dict:
    """``{"median", "min", "max", "values"}`` of repeated measurements (same unit as values).

    The median of an even count is the mean of the two middle values.
    """
    if not values:
        raise ValueError("summarize needs at least one value")
    return {"median": median(values), "min": min(values), "max": max(values),
            "values": list(values)}


def train_figures(runs: list[TrainRun], settings: Settings) -> dict:
    """Per-repeat figures of training -> ``summarize``d: name -> {median, min, max, values}.

    ``train_img_per_s`` images/second and ``ms_per_step`` milliseconds over the throughput
    window; ``fwd_ms`` / ``bwd_ms`` mean milliseconds per batch in the forward/backward
    window (absent when not separable); ``first_step_s`` and ``epoch_s`` seconds.
    """
    img_s = [r.throughput.images / r.throughput.seconds for r in runs]
    out = {"train_img_per_s": img_s,
           "ms_per_step": [1e3 * r.throughput.seconds / r.throughput.steps for r in runs],
           "first_step_s": [r.first_step_s for r in runs]}
    if all(r.fwd_s for r in runs):
        out["fwd_ms"] = [1e3 * sum(r.fwd_s) / len(r.fwd_s) for r in runs]
        out["bwd_ms"] = [1e3 * sum(r.bwd_s) / len(r.bwd_s) for r in runs]
    if all(r.epoch is not None for r in runs):
        out["epoch_s"] = [r.epoch.seconds for r in runs]
    else:  # the same images at the measured rate
        out["epoch_s"] = [settings.train_images / rate for rate in img_s]
    return {name: summarize(values) for name, values in out.items()}


def eval_figures(runs: list[EvalRun]) -> dict:
    """``eval_img_per_s`` (images/second) and ``test_set_s`` (seconds), ``summarize``d."""
    return {"eval_img_per_s": summarize([r.throughput.images / r.throughput.seconds
                                         for r in runs]),
            "test_set_s": summarize([r.test.seconds for r in runs])}


def ratios(train_rows: list[dict]) -> list[dict]:
    """``RATIOS`` of median train images/second, in percent, per batch size."""
    by_key = {(r["framework"], r["variant"], r["batch_size"]): r for r in train_rows}
    out = []
    for name, top, bottom in RATIOS:
        for (fw, variant, size), row in by_key.items():
            other = by_key.get((*bottom, size))
            if (fw, variant) == top and other:
                rate = lambda r: r["figures"]["train_img_per_s"]["median"]  # noqa: E731
                out.append({"name": name, "batch_size": size,
                            "percent": 100.0 * rate(row) / rate(other)})
    return out


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata_of(settings: Settings, modules: dict, command: str) -> dict:
    """Versions, devices, threads, BLAS, load, settings: what a reader needs to trust a figure."""
    versions = {"python": platform.python_version()}
    for package in ("torch", "lightning", "mlx", "numpy", "tensorboard"):
        try:
            versions[package] = metadata.version(package)  # without importing it
        except metadata.PackageNotFoundError:
            versions[package] = None
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command, "host": platform.node(), "platform": platform.platform(),
            "cpu_model": cpu_model(), "device": settings.device, "versions": versions,
            "threads": {"os.cpu_count": os.cpu_count(),
                        "affinity": len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else None,
                        **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                          "OPENBLAS_NUM_THREADS",
                                                          "MKL_NUM_THREADS")}},
            "loadavg_start": list(os.getloadavg()),
            "dataset": settings.dataset, "train_images": settings.train_images,
            "settings": {"batch_sizes": settings.batch_sizes, "steps": settings.steps,
                         "warmup": max(settings.warmup, 1), "full_epoch": settings.full_epoch,
                         "eval_batch_size": settings.eval_batch_size,
                         "test_images": settings.test_images, "seed": settings.seed,
                         "precision": settings.precision, **settings.model},
            "units": UNITS}
    for fw, module in modules.items():  # device name, threads, BLAS: each framework's words
        meta[fw] = module.describe(settings.device)
    return meta


def _cell(figure: dict | None, digits: int, spread: bool = False) -> str:
    if figure is None:
        return "-"
    text = f"{figure['median']:,.{digits}f}"
    return text + f" [{figure['min']:,.{digits}f}-{figure['max']:,.{digits}f}]" if spread else text


def table(report: dict) -> str:
    """The aligned text table of every row, then the ratio lines."""
    evals = {(r["framework"], r["variant"]): r["figures"] for r in report["eval"]}
    ebs = report["meta"]["settings"]["eval_batch_size"]
    head = ("framework", "variant", "batch", "train img/s median [min-max]", "ms/step",
            "fwd ms", "bwd ms", "first step s", "epoch s", f"eval img/s (b{ebs})", "test set s")
    lines = [head]
    for row in report["results"]:
        f, e = row["figures"], evals.get((row["framework"], row["variant"]), {})
        epoch = ("~" if row["epoch_estimated"] else "") + _cell(f["epoch_s"], 1)
        lines.append((row["framework"], row["variant"], str(row["batch_size"]),
                      _cell(f["train_img_per_s"], 0, True), _cell(f["ms_per_step"], 2),
                      _cell(f.get("fwd_ms"), 2), _cell(f.get("bwd_ms"), 2),
                      _cell(f["first_step_s"], 2), epoch, _cell(e.get("eval_img_per_s"), 0),
                      _cell(e.get("test_set_s"), 2)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(line, widths))) for line in lines]
    text.insert(1, "-" * len(text[0]))
    text += [f"{r['name']} = {r['percent']:.0f}% (batch {r['batch_size']})"
             for r in report["ratios"]]
    if any(row["epoch_estimated"] for row in report["results"]):
        text.append("~ epoch s estimated: train images / train img/s (--full-epoch measures it)")
    return "\n".join(text)


def write_json(path: Path, report: dict) -> None:
    """Atomically (``cnn.atomic``): a reader never sees half a file."""
    atomic.write_text(atomic.output_target(path), json.dumps(report, indent=2) + "\n")


def write_scalars(logdir: Path, report: dict) -> Path:
    """Median figures as TensorBoard scalars in a new ``LOGDIR/version_N``.

    Tags ``bench/<framework>/<variant>/<figure>``; the step is the batch size (the eval batch
    size for ``eval_img_per_s`` and ``test_set_s``). Written with tensorboard's own writer,
    so the MLX side needs no torch.
    """
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    n = 0
    while (logdir / f"version_{n}").exists():
        n += 1
    run_dir = logdir / f"version_{n}"
    run_dir.mkdir(parents=True)
    writer = EventFileWriter(str(run_dir))
    rows = [(r, r["batch_size"]) for r in report["results"]]
    rows += [(r, r["eval_batch_size"]) for r in report["eval"]]
    for row, step in rows:
        for name, figure in row["figures"].items():
            tag = f"bench/{row['framework']}/{row['variant']}/{name}"
            value = Summary.Value(tag=tag, simple_value=figure["median"])
            writer.add_event(Event(wall_time=time.time(), step=step,
                                   summary=Summary(value=[value])))
    writer.close()
    return run_dir
