"""Mirror of lightning.pytorch.callbacks.progress.rich_progress: ``RichProgressBar``, the bars of
``TQDMProgressBar`` drawn by ``rich``."""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

from cnn.mx.lightning.callbacks.progress.tqdm_progress import TQDMProgressBar


class _RichBar:
    """One rich task with the part of tqdm's interface ``TQDMProgressBar`` uses (``n``, ``total``,
    ``set_postfix``, ``refresh``, ``close``)."""

    def __init__(self, progress: Any, desc: str, total: Any, leave: bool) -> None:
        self.progress, self.total, self.leave, self.n = progress, total, leave, 0
        self._postfix = ""
        self.task = progress.add_task(desc, total=total, metrics="")

    def set_postfix(self, metrics: dict[str, Any], refresh: bool = True) -> None:
        self._postfix = " ".join(f"{k}: {v}" for k, v in metrics.items())
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        self.progress.update(self.task, completed=self.n, metrics=self._postfix)

    def close(self) -> None:
        self.refresh()
        if not self.leave:
            self.progress.remove_task(self.task)


class RichProgressBar(TQDMProgressBar):
    """Lightning's ``RichProgressBar``: the same bars, metrics and hooks as :class:`TQDMProgressBar`,
    drawn by ``rich`` (one live display per run, stopped at ``teardown`` or on an exception).

    Args:
        refresh_rate: redraw every this many batches.
        leave: keep finished evaluation bars on screen.
        theme: accepted for Lightning parity (its ``RichProgressBarTheme``); the default style is used.
        console_kwargs: arguments of the ``rich.console.Console`` drawn on.

    Raises ``ModuleNotFoundError`` when ``rich`` is not installed, as Lightning does.
    """

    def __init__(self, refresh_rate: int = 100, leave: bool = False, theme: Optional[Any] = None,
                 console_kwargs: Optional[dict[str, Any]] = None) -> None:
        if importlib.util.find_spec("rich") is None:
            raise ModuleNotFoundError("`RichProgressBar` requires `rich`. Install it by running `pip install rich`.")
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.theme, self._console_kwargs = theme, console_kwargs or {}
        self._progress: Any = None

    def _bar(self, desc: str, total: Any, leave: bool, position: int = 0) -> _RichBar:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"),
                                      console=Console(**self._console_kwargs))
            self._progress.start()
        return _RichBar(self._progress, desc, total, leave)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._stop()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._stop()
