"""Mirror of lightning.pytorch.trainer.connectors.signal_connector: SIGINT and SIGTERM during ``fit``."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Optional


class SignalConnector:
    """During ``fit`` SIGINT/SIGTERM stop training at the next batch boundary: ``ModelCheckpoint`` writes a
    resumable ``last`` checkpoint from ``on_exception``, loggers are finalized and ``TrainingInterrupted``
    (``SystemExit(128 + signum)``) is raised; a second Ctrl-C interrupts at once. With several ranks a signal any
    rank received stops all of them at the same batch: ``agreed`` is the signal the ranks agreed on."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.received: Optional[int] = None
        self.agreed: Optional[int] = None
        self._orig_handlers: dict[int, Any] = {}

    def register(self) -> None:
        self.received = self.agreed = None
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if self.received is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # second Ctrl-C: stop immediately
            self.received = signum
            print(f"\nReceived {signal.Signals(signum).name}: stopping after the current batch "
                  "(saving a resumable 'last' checkpoint)", file=sys.stderr)

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._orig_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

    def restore(self) -> None:
        """The handlers from before :meth:`register`."""
        for sig, h in self._orig_handlers.items():
            signal.signal(sig, h)
        self._orig_handlers = {}

    def signal_to_stop(self, agree: bool) -> Optional[int]:
        """The signal that stops ``fit`` here, the same on every rank: with several ranks a signal any one received
        (agreed now with ``agree``, else at the last training step), so that all stop at the same batch."""
        trainer = self.trainer
        if trainer.world_size == 1:
            return self.received
        if agree:
            stop = trainer.accelerator_connector.any_rank(self.received is not None)
            self.agreed = (self.received or signal.SIGTERM) if stop else None
        return self.agreed
