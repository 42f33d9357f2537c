"""Mirror of lightning.pytorch.trainer.connectors.signal_connector: SIGINT, SIGTERM and SLURM's SIGUSR1 in ``fit``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from typing import Any, Optional

# Lightning's SLURMEnvironment: its default requeue signal, and the job names of an interactive session (no requeue).
REQUEUE_SIGNAL = signal.SIGUSR1
INTERACTIVE_JOB_NAMES = ("bash", "interactive")


def slurm_auto_requeue() -> bool:
    """Lightning's ``SLURMEnvironment.detect()`` (with its default ``auto_requeue=True``): a SLURM batch task."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in INTERACTIVE_JOB_NAMES


def slurm_job_id() -> str:
    """Lightning's: ``<array job>_<task>`` for an array job, else ``SLURM_JOB_ID``."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ.get("SLURM_JOB_ID", "")
    if not re.fullmatch(r"[0-9_-]+", job):
        raise ValueError(f"SLURM job id {job!r} is not a job id")
    return job


def hpc_save_path(folder: str, suffix: str = ".safetensors") -> str:
    """Lightning's ``hpc_save_path``: ``<folder>/hpc_ckpt_<N>`` with N one above the highest there."""
    numbers = [int(m.group(1)) for name in (os.listdir(folder) if os.path.isdir(folder) else [])
               if (m := re.fullmatch(r"hpc_ckpt_(\d+)" + re.escape(suffix), name))]
    return os.path.join(folder, f"hpc_ckpt_{max(numbers, default=0) + 1}{suffix}")


def stopping_line(signum: Optional[int], world_size: int = 1) -> str:
    """What a stop for ``signum`` will do; ``None``: a signal another of ``world_size`` ranks received."""
    then = "saving an hpc checkpoint and requeueing the SLURM job" if signum == REQUEUE_SIGNAL \
        else "saving a resumable 'last' checkpoint"
    if world_size == 1:
        return f"Received {signal.Signals(signum).name}: stopping after the current batch ({then})"
    what = f"Received {signal.Signals(signum).name}" if signum is not None else "A rank received a signal"
    return f"{what}: all {world_size} ranks stop after the current batch ({then})"


class SignalConnector:
    """During ``fit`` SIGINT/SIGTERM stop training at the next batch boundary: ``ModelCheckpoint`` writes a
    resumable ``last`` checkpoint from ``on_exception``, loggers are finalized and ``TrainingInterrupted``
    (``SystemExit(128 + signum)``) is raised; a second Ctrl-C interrupts at once. With several ranks a signal any
    rank received stops all of them at the same batch: ``agreed`` is the signal the ranks agreed on, and rank zero
    says the stop once they have agreed (a rank whose peer died meanwhile says that instead, from the failed
    collective: the SIGTERM ``mlx.launch`` then sends is not a request to save).

    Under SLURM with auto-requeue (``slurm_auto_requeue``), SIGUSR1 (the signal ``#SBATCH --signal=USR1@T`` sends
    before the time limit) also stops at the next batch boundary, where, as Lightning's handler does,
    ``hpc_ckpt_<N>.safetensors`` is written in ``default_root_dir`` and rank zero runs ``scontrol requeue <job>``;
    then the run ends as for SIGTERM (``last`` written, exit 138). Unlike Lightning, the checkpoint is taken
    between steps, not inside the handler, and the process exits instead of waiting for SLURM to kill it. Without
    ``scontrol`` a ``warning:`` line says the job was not requeued. ``hpc_path``: the checkpoint written, or None.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.received: Optional[int] = None
        self.agreed: Optional[int] = None
        self.hpc_path: Optional[str] = None
        self._orig_handlers: dict[int, Any] = {}

    def register(self) -> None:
        self.received = self.agreed = self.hpc_path = None
        if threading.current_thread() is not threading.main_thread():
            return
        signals = [signal.SIGINT, signal.SIGTERM] + ([REQUEUE_SIGNAL] if slurm_auto_requeue() else [])
        for sig in signals:
            self._orig_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def _handler(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop immediately
        self.received = signum
        # With several ranks the stop is said once the ranks have agreed on it (``agree``): a SIGTERM that
        # ``mlx.launch`` sends because another rank died is no request to save, and the next collective says so.
        if self.trainer.world_size == 1:
            print(f"\n{stopping_line(signum)}", file=sys.stderr)

    def agree(self, stop: bool) -> None:
        """Record whether the ranks agreed (a collective, now) to stop after this batch for a signal one of them
        received: this rank's signal, else SIGTERM. Rank zero says so once."""
        first = stop and self.agreed is None
        self.agreed = (self.received or signal.SIGTERM) if stop else None
        if first and self.trainer.is_global_zero:
            print(f"\n{stopping_line(self.received, self.trainer.world_size)}", file=sys.stderr)

    def restore(self) -> None:
        """The handlers from before :meth:`register`, where the handler is still this connector's (a signal set
        to be ignored since, e.g. by ``AcceleratorConnector.on_exception``, stays ignored)."""
        for sig, h in self._orig_handlers.items():
            if signal.getsignal(sig) == self._handler:
                signal.signal(sig, h)
        self._orig_handlers = {}

    def signal_to_stop(self, agree: bool) -> Optional[int]:
        """The signal that stops ``fit`` here, the same on every rank: with several ranks a signal any one received
        (agreed now with ``agree``, else at the last training step), so that all stop at the same batch. Called at
        a batch boundary: a requeue signal's checkpoint and requeue happen here, once."""
        trainer = self.trainer
        if trainer.world_size == 1:
            stop = self.received
        else:
            if agree:
                self.agree(trainer.strategy.any_rank(self.received is not None))
            stop = self.agreed
        if stop == REQUEUE_SIGNAL and self.hpc_path is None:
            self._save_and_requeue()
        return stop

    def _save_and_requeue(self) -> None:
        """Lightning's ``_slurm_sigusr_handler_fn``, between two steps."""
        trainer = self.trainer
        self.hpc_path = hpc_save_path(trainer.default_root_dir)
        trainer.save_checkpoint(self.hpc_path)
        if not trainer.is_global_zero:
            return
        job = slurm_job_id()
        if shutil.which("scontrol") is None:
            print(f"warning: scontrol not found, so SLURM job {job} was not requeued; its state is in "
                  f"{self.hpc_path}", file=sys.stderr)
            return
        result = subprocess.call(["scontrol", "requeue", job])
        print(f"Requeued SLURM job {job}" if result == 0 else
              f"warning: requeueing SLURM job {job} failed (scontrol exit status {result}); its state is in "
              f"{self.hpc_path}", file=sys.stderr)
