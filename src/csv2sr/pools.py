"""How the commands end their pools: :func:`ended` for :mod:`multiprocessing.pool`,
:func:`stopping` for :mod:`concurrent.futures` executors.

``with Pool(...)`` terminates the workers on leaving, even when every result is in: each
worker gets SIGTERM wherever it is, and ``terminate`` then joins them.  That join has
waited for ever (seen in the test suite: a convert with two jobs hung in
``Pool.terminate``, one idle worker left alive with its SIGTERM handler installed and no
signal pending; why it never got the signal was not found).  :func:`ended` closes the pool
when its work is done, so that each worker reads the end-of-work sentinel and exits by
itself, and terminates it only when the caller fails or is interrupted.

``with executor`` waits on leaving for every task submitted, even when the block was left
by Ctrl-C: a ``validate --jobs 2`` of 500 files went on for 3.4 s after the signal.
:func:`stopping` cancels what has not started when the block raises, so only the tasks
already running are waited for.  (A CI run once saw that command still running two
minutes after the signal; the likelier cause of that is the one
:func:`csv2sr.errors.held_interrupts` guards against.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING, TypeVar

from csv2sr.errors import held_interrupts

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

__all__ = ["ended", "started", "stopping"]

E = TypeVar("E", bound=Executor)


@contextlib.contextmanager
def ended(pool: Pool) -> Iterator[Pool]:
    """``pool`` for the block; closed and joined after it, terminated first if the block
    raised (an error, Ctrl-C, a generator closed early)."""
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


@contextlib.contextmanager
def started(make: Callable[[], Pool]) -> Iterator[Pool]:
    """:func:`ended` of the pool ``make`` returns, with SIGINT and SIGTERM held while it
    starts its workers (:func:`csv2sr.errors.held_interrupts`): a signal then ends a whole
    pool."""
    with contextlib.ExitStack() as stack:
        with held_interrupts():
            pool = stack.enter_context(ended(make()))
        yield pool


@contextlib.contextmanager
def stopping(executor: E) -> Iterator[E]:
    """``executor`` for the block; shut down after it, waiting for its tasks, and if the
    block raised (an error, Ctrl-C, a generator closed early) with the tasks that have not
    started cancelled first."""
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True)
