"""How the commands end their process pools (:mod:`multiprocessing.pool`).

``with Pool(...)`` terminates the workers on leaving, even when every result is in: each
worker gets SIGTERM wherever it is, and ``terminate`` then joins them.  That join has
waited for ever (seen in the test suite: a convert with two jobs hung in
``Pool.terminate``, one idle worker left alive with its SIGTERM handler installed and no
signal pending; why it never got the signal was not found).  :func:`ended` closes the pool
when its work is done, so that each worker reads the end-of-work sentinel and exits by
itself, and terminates it only when the caller fails or is interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from multiprocessing.pool import Pool

__all__ = ["ended"]


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
