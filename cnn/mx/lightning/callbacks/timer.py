"""Mirror of lightning.pytorch.callbacks.timer: ``Timer`` (``Trainer(max_time=...)`` adds one)."""

from __future__ import annotations

import re
import sys
import time
from datetime import timedelta
from typing import Any, Optional, Union

from cnn.mx.lightning.callbacks.callback import Callback

_STAGES = ("train", "sanity_check", "validate", "test", "predict")


def parse_duration(duration: Optional[Union[str, timedelta, dict]], what: str = "Timer(duration") -> Optional[float]:
    """Seconds of a Lightning duration: ``"DD:HH:MM:SS"``, a ``timedelta`` or ``timedelta``'s keywords as a dict."""
    if duration is None:
        return None
    if isinstance(duration, str):
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", duration.strip())
        if not match:
            raise ValueError(f"`{what}={duration!r})` is not a valid duration. Expected a string in the format "
                             "DD:HH:MM:SS.")
        days, hours, minutes, seconds = map(int, match.groups())
        duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    elif isinstance(duration, dict):
        duration = timedelta(**duration)
    return duration.total_seconds()


class Timer(Callback):
    """Lightning's ``Timer``: measures the time spent in the train, validation and test loops and, given a
    ``duration`` (``"DD:HH:MM:SS"``, ``timedelta`` or dict), sets ``trainer.should_stop`` once training has run that
    long, checked after every training batch (``interval="step"``) or epoch (``"epoch"``), and at ``on_fit_start``
    (a restored timer may be spent already). Training time counts on across a resume (``state_dict``). ``verbose``
    prints the one line Lightning logs when the limit is reached."""

    def __init__(self, duration: Optional[Union[str, timedelta, dict[str, int]]] = None, interval: str = "step",
                 verbose: bool = True) -> None:
        if interval not in ("step", "epoch"):
            raise ValueError(f"Unsupported parameter value `Timer(interval={interval})`. Possible choices are: "
                             "step, epoch")
        self._duration = parse_duration(duration)
        self._interval, self._verbose = interval, verbose
        self._start_time: dict[str, Optional[float]] = dict.fromkeys(_STAGES)
        self._end_time: dict[str, Optional[float]] = dict.fromkeys(_STAGES)
        self._offset = 0.0

    def start_time(self, stage: str = "train") -> Optional[float]:
        """``time.monotonic()`` when ``stage`` started, in seconds (``None``: not yet)."""
        return self._start_time[stage]

    def end_time(self, stage: str = "train") -> Optional[float]:
        """``time.monotonic()`` when ``stage`` ended, in seconds (``None``: not yet)."""
        return self._end_time[stage]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds spent in ``stage`` (training: including the runs before a resume)."""
        start, end = self._start_time[stage], self._end_time[stage]
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        return (time.monotonic() if end is None else end) - start + offset

    def time_remaining(self, stage: str = "train") -> Optional[float]:
        """Seconds left of ``duration`` (``None`` without one)."""
        return None if self._duration is None else self._duration - self.time_elapsed(stage)

    def _mark(self, which: dict, stage: str) -> None:
        which[stage] = time.monotonic()

    def on_train_start(self, trainer, pl_module) -> None:
        self._mark(self._start_time, "train")

    def on_train_end(self, trainer, pl_module) -> None:
        self._mark(self._end_time, "train")

    def on_validation_start(self, trainer, pl_module) -> None:
        self._mark(self._start_time, "validate")

    def on_validation_end(self, trainer, pl_module) -> None:
        self._mark(self._end_time, "validate")

    def on_test_start(self, trainer, pl_module) -> None:
        self._mark(self._start_time, "test")

    def on_test_end(self, trainer, pl_module) -> None:
        self._mark(self._end_time, "test")

    def on_fit_start(self, trainer, pl_module) -> None:
        if self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in _STAGES}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = float(state_dict.get("time_elapsed", {}).get("train", 0.0))

    def _check_time_remaining(self, trainer) -> None:
        should_stop = self.time_elapsed() >= self._duration
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop and self._verbose and trainer.is_global_zero:
            elapsed = timedelta(seconds=int(self.time_elapsed("train")))
            print(f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.", file=sys.stderr)
