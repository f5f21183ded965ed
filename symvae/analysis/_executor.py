"""Executors for studies: one chunk function, run serially, on local processes or on a dask.distributed cluster.

A study is a list of independent points (parameter values). ``Executor.map_points`` cuts the list into chunks (at most
``max_tasks`` of them, so 10^6 points are ~10^3 tasks, not 10^6), runs ``run_chunk(fn, chunk)`` on each chunk with the
chosen backend and returns the results in point order. The chunk function is the same everywhere, so a sweep gives
bit-identical numbers serially, on processes and on dask. Progress is reported per finished chunk; Ctrl-C cancels the
chunks not yet started and re-raises ``KeyboardInterrupt``.

The interface is shaped like ``concurrent.futures``: ``submit(fn, *args) -> Future``, ``map``, ``shutdown`` and use
as a context manager.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import os
from typing import Any, Callable, Iterable, Sequence

from ..errors import InvalidInputError

__all__ = ["interruptible", "Executor", "SerialExecutor", "ProcessExecutor", "DaskExecutor", "make_executor", "run_chunk",
           "chunk_bounds", "EXECUTORS"]

EXECUTORS = ("serial", "processes", "dask")


def run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any]) -> list:
    """Apply ``fn`` to each point of ``chunk`` in order: the unit of work of every executor."""
    out = []
    for point in chunk:
        try:
            out.append(fn(point))
        except SystemError as exc:
            # Ctrl-C inside a numba-compiled call surfaces as "returned a result with an exception set"
            if _from_interrupt(exc):
                raise KeyboardInterrupt from None
            raise
    return out


def _from_interrupt(exc: BaseException) -> bool:
    """True if a KeyboardInterrupt is somewhere in the cause/context chain of ``exc``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def interruptible():
    """Turn a Ctrl-C that arrived inside a numba-compiled call (a ``SystemError`` caused by the interrupt) back into
    ``KeyboardInterrupt``."""
    try:
        yield
    except SystemError as exc:
        if _from_interrupt(exc):
            raise KeyboardInterrupt from None
        raise


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is handled by the parent, which terminates its workers."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def chunk_bounds(n: int, *, workers: int, max_tasks: int = 1000, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) index ranges covering ``n`` points.

    Without ``chunk_size``: about four chunks per worker (load balance), never more than ``max_tasks`` chunks.
    """
    if n <= 0:
        return []
    if chunk_size is None:
        tasks = max(1, min(n, max_tasks, 4 * max(1, workers)))
        chunk_size = math.ceil(n / tasks)
    if chunk_size < 1:
        raise InvalidInputError(f"chunk size must be >= 1, got {chunk_size}")
    if math.ceil(n / chunk_size) > max_tasks:
        chunk_size = math.ceil(n / max_tasks)
    return [(i, min(n, i + chunk_size)) for i in range(0, n, chunk_size)]


class Executor:
    """Abstract: a pool that runs chunks of points. Subclasses define ``submit``, ``workers`` and ``_cancel``."""

    name = "abstract"
    workers = 1
    #: run chunks one after another in this process (progress after each; no futures)
    lazy = False

    def submit(self, fn: Callable, *args) -> cf.Future:  # pragma: no cover - abstract
        raise NotImplementedError

    def map(self, fn: Callable, iterable: Iterable, *, chunksize: int | None = None) -> list:
        """``[fn(x) for x in iterable]``, computed in chunks (results in order)."""
        return self.map_points(fn, list(iterable), chunk_size=chunksize)

    def shutdown(self, wait: bool = True) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown(wait=exc[0] is None)
        return False

    def _as_completed(self, futures):
        return cf.as_completed(futures)

    def _cancel(self, futures) -> None:
        for f in futures:
            f.cancel()

    def map_points(self, fn: Callable[[Any], Any], points: Sequence[Any], *, chunk_size: int | None = None,
                   max_tasks: int = 1000, progress: Callable[[int, int], None] | None = None) -> list:
        """``[fn(p) for p in points]`` in chunks on this executor.

        Arguments:
            fn: a picklable (module-level) function of one point.
            points: the points (picklable).

        Other arguments:
            chunk_size: points per task (default: ~4 tasks per worker, at most ``max_tasks`` tasks).
            progress: called as ``progress(points_done, points_total)`` after each finished chunk.

        Raises:
            KeyboardInterrupt: after cancelling the chunks not yet run.
        """
        points = list(points)
        bounds = chunk_bounds(len(points), workers=self.workers, max_tasks=max_tasks, chunk_size=chunk_size)
        results: list[Any] = [None] * len(points)
        futures = {}
        if self.lazy:
            done = 0
            for lo, hi in bounds:
                results[lo:hi] = run_chunk(fn, points[lo:hi])
                done += hi - lo
                if progress is not None:
                    progress(done, len(points))
            return results
        try:
            for lo, hi in bounds:
                futures[self.submit(run_chunk, fn, points[lo:hi])] = (lo, hi)
            done = 0
            for fut in self._as_completed(list(futures)):
                lo, hi = futures[fut]
                results[lo:hi] = fut.result()
                done += hi - lo
                if progress is not None:
                    progress(done, len(points))
        except BaseException:
            self._cancel(list(futures))
            raise
        return results


class SerialExecutor(Executor):
    """Runs each chunk in this process, at submission (interruptible between and inside points)."""

    name = "serial"
    workers = 1
    lazy = True

    def submit(self, fn: Callable, *args) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # KeyboardInterrupt propagates at once
            fut.set_exception(exc)
        return fut


class ProcessExecutor(Executor):
    """Local worker processes (``concurrent.futures.ProcessPoolExecutor``)."""

    name = "processes"

    def __init__(self, workers: int | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        if self.workers < 1:
            raise InvalidInputError(f"workers must be >= 1, got {workers}")
        self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, initializer=_ignore_sigint)

    def submit(self, fn: Callable, *args) -> cf.Future:
        return self._pool.submit(fn, *args)

    def _cancel(self, futures) -> None:
        # a running chunk cannot be cancelled: end this pool's own worker processes, then drop the queue
        for proc in list(getattr(self._pool, "_processes", {}).values()):
            proc.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


class DaskExecutor(Executor):
    """A dask.distributed cluster: ``DaskExecutor(scheduler="tcp://host:8786")`` or ``DaskExecutor(client=client)``.

    Needs the optional extra ``symvae[dask]``. Every chunk is one task (``Client.submit(run_chunk, fn, chunk)``).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, client=None):
        try:
            import distributed
        except ImportError:
            raise InvalidInputError("--executor dask needs dask.distributed: pip install 'symvae[dask]'") from None
        self._distributed = distributed
        if client is None:
            if not scheduler:
                raise InvalidInputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise InvalidInputError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self.workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, *args, pure=False)

    def _as_completed(self, futures):
        return self._distributed.as_completed(futures)

    def _cancel(self, futures) -> None:
        self.client.cancel(futures)

    def shutdown(self, wait: bool = True) -> None:
        if self._owns_client:
            self.client.close()


def make_executor(kind: str = "serial", *, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """An executor by name: ``serial``, ``processes`` (``workers`` local processes) or ``dask`` (``scheduler``).

    Raises:
        InvalidInputError: unknown kind, bad worker count, dask missing or unreachable.
    """
    if kind == "serial":
        return SerialExecutor()
    if kind == "processes":
        if workers is not None and workers < 1:
            raise InvalidInputError(f"--workers must be >= 1, got {workers}")
        return ProcessExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler)
    raise InvalidInputError(f"unknown executor {kind!r}; known: {', '.join(EXECUTORS)}")
