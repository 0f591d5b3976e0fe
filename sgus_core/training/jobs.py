"""Training in the background, for the Train page: one job at a time per process, cancellable,
its progress readable from any session and any rerun.

The job runs :func:`~sgus_core.training.from_store.train_from_store` in a child process of its
own (spawned, with a store of its own), watched by a daemon thread of the app: building and
running the TensorFlow graph then never competes for the app's interpreter lock with the pages
people are using (in-process, a Train page refreshing once a second slowed a two-epoch
fine-tune past five minutes), and a crash of TensorFlow cannot take the app down. The child
sends each progress report (every epoch's figures: the validation curve the page draws) over a
queue; Cancel sets an event the child's progress callback checks, raising :class:`Cancelled`,
which stops Keras at the end of the current batch. The registry is a module-level object, so a
page switch or a rerun finds the job where it left it. Nothing here imports Keras.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sgus_core.errors import ModelError, SgusError
from sgus_core.settings import Settings

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"


class Cancelled(SgusError):
    """The person who started the training cancelled it."""


class JobError(ModelError):
    """A job cannot start (another one is running, or the request is incomplete)."""


@dataclass(frozen=True)
class TrainRequest:
    """What to train: ``train_from_store``'s arguments, plus who asked."""

    task: str
    dataset: str
    rater: str | None
    started_by: str
    out: str
    arch: str | None = None
    from_model: str | None = None
    epochs: int | None = None
    folds: int | None = None
    target: str = "devita"


@dataclass
class Job:
    """One training job and what it has reported so far (read it under ``lock``)."""

    request: TrainRequest
    state: str = RUNNING
    stage: str = "loading frames"
    done: int = 0
    total: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the job's state for drawing."""
        with self.lock:
            return {
                "request": self.request,
                "state": self.state,
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "curve": list(self.curve),
                "card": self.card,
                "error": self.error,
                "started": self.started,
                "finished": self.finished,
                "cancel_requested": self.cancel_requested,
            }

    def progress(self, stage: str, done: int, total: int, logs: dict[str, float]) -> None:
        """Record one progress report of the training."""
        with self.lock:
            self.stage, self.done, self.total = stage, done, total
            figures = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
            if figures:
                self.curve.append({"stage": stage, "epoch": done, **figures})


class TrainingJobs:
    """The process's training jobs: at most one running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._job: Job | None = None

    def current(self) -> Job | None:
        """The running job, or the last one to finish (None before the first)."""
        with self._lock:
            return self._job

    def start(self, settings: Settings, request: TrainRequest) -> Job:
        """Start ``request`` in the background.

        Raises:
            JobError: a job is running already.
        """
        with self._lock:
            if self._job is not None and self._job.state == RUNNING:
                who = self._job.request.started_by
                raise JobError(f"A training job started by {who} is running; wait or cancel it.")
            job = Job(request)
            self._job = job
        thread = threading.Thread(
            target=_run, args=(job, settings), name="sgus-training", daemon=True
        )
        thread.start()
        return job

    def cancel(self) -> bool:
        """Ask the running job to stop; returns whether there was one."""
        job = self.current()
        if job is None or job.state != RUNNING:
            return False
        with job.lock:
            job.cancel_requested = True
        return True

    def clear(self) -> None:
        """Forget a finished job (its model, if any, stays saved)."""
        with self._lock:
            if self._job is not None and self._job.state != RUNNING:
                self._job = None


def _run(job: Job, settings: Settings) -> None:
    """Watch the child process that trains: record its reports, pass on a cancel, and note how
    it ended (a child that dies without a word is a failure with its exit code)."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding TensorFlow
    events: Any = ctx.Queue()
    cancel = ctx.Event()
    child = ctx.Process(
        target=_train_in_child, args=(job.request, settings, events, cancel),
        name="sgus-training", daemon=True,
    )  # fmt: skip
    state, card, error = FAILED, None, None
    try:
        child.start()
        while True:
            try:
                kind, payload = events.get(timeout=0.5)
            except queue.Empty:
                with job.lock:
                    if job.cancel_requested:
                        cancel.set()
                if not child.is_alive():
                    error = (
                        f"the training process stopped unexpectedly (exit code {child.exitcode})"
                    )
                    break
                continue
            if kind == "progress":
                job.progress(*payload)
                continue
            state = {"done": DONE, "cancelled": CANCELLED}.get(kind, FAILED)
            card, error = (payload, None) if kind == "done" else (None, payload)
            break
        child.join(timeout=30)
    except Exception as exc:  # the watcher must report, not vanish
        error = f"{type(exc).__name__}: {exc}"
    with job.lock:
        job.state, job.card, job.error, job.finished = state, card, error, time.time()


def _train_in_child(request: TrainRequest, settings: Settings, events: Any, cancel: Any) -> None:
    """The child process: train, reporting progress and the outcome over ``events``."""
    from sgus_core.store import LabelStore
    from sgus_core.training.from_store import train_from_store

    def progress(stage: str, done: int, total: int, logs: dict[str, float]) -> None:
        if cancel.is_set():
            raise Cancelled("training was cancelled")
        figures = {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
        events.put(("progress", (stage, done, total, figures)))

    r = request
    try:
        with LabelStore(settings.db_url) as store:
            card = train_from_store(
                store,
                settings,
                r.task,
                r.dataset,
                arch=r.arch,
                epochs=r.epochs,
                out=r.out,
                from_model=r.from_model,
                rater=r.rater,
                target=r.target,
                folds=r.folds,
                load_progress=lambda done, total: progress("loading frames", done, total, {}),
                progress=progress,
                actor=r.started_by,
            )
        events.put(("done", card))
    except Cancelled:
        events.put(("cancelled", None))
    except SgusError as exc:
        events.put(("failed", str(exc)))
    except Exception as exc:  # a training run must report, not vanish
        events.put(("failed", f"{type(exc).__name__}: {exc}"))


JOBS = TrainingJobs()
"""The one registry of this process (the Streamlit server's)."""
