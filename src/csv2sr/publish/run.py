"""A publish run: send what the journal does not confirm, journal each confirmation,
then (``verify``) look every confirmed file up on the server.

Work goes out in tasks (a STOW-RS batch, or one file for C-STORE) to ``concurrency``
worker threads, each with its own session or association, at most twice as many tasks in
flight as workers.  The main thread alone writes the journal and reports progress.  The
run stops early, keeping every confirmation it got, when a worker meets a
:class:`~csv2sr.publish.model.DestinationError` (credentials refused, no service, retries
exhausted) or on Ctrl-C; what was not sent is counted and a rerun resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from csv2sr.errors import Interrupted
from csv2sr.publish.destination import Destination, Sender, Verifier
from csv2sr.publish.journal import Journal, Record, read_journal, utc_now
from csv2sr.publish.model import DestinationError, Item, Outcome, PublishResult, Status
from csv2sr.publish.plan import Plan
from csv2sr.publish.retry import RetryPolicy, StoppedError

__all__ = ["Options", "batches", "dry_run", "publish"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
OnOutcome = Callable[[Outcome], None]


@dataclass(frozen=True)
class Options:
    """How to send: batch bounds (STOW-RS), workers, retries, verification."""

    batch_files: int = 50
    batch_bytes: int = 16 << 20
    concurrency: int = 4
    attempts: int = 5
    backoff: float = 0.5
    backoff_cap: float = 30.0
    verify: bool = False


def batches(items: Sequence[Item], max_files: int, max_bytes: int) -> Iterator[list[Item]]:
    """Consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes (a file
    larger than ``max_bytes`` goes alone)."""
    batch: list[Item] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= max_files or size + item.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item.size
    if batch:
        yield batch


def dry_run(plan: Plan, journal_path: Path) -> tuple[list[Item], list[tuple[Item, Record]]]:
    """What a run would send and what the journal already confirms (reads, writes nothing)."""
    return plan.split(read_journal(journal_path))


W = TypeVar("W", Sender, Verifier)


class _Workers(Generic[W]):
    """Thread-local senders (or verifiers), closed together at the end."""

    def __init__(self, make: Callable[[], W]) -> None:
        self.make: Callable[[], W] = make
        self.local = threading.local()
        self.lock = threading.Lock()
        self.made: list[W] = []

    def get(self) -> W:
        worker: W | None = getattr(self.local, "worker", None)
        if worker is None:
            worker = self.make()
            self.local.worker = worker
            with self.lock:
                self.made.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.made:
            try:
                worker.close()
            except Exception as exc:  # closing must not hide the result
                log.debug("closing %r: %s", worker, exc)

    @property
    def opened(self) -> int:
        return sum(getattr(worker, "opened", 0) for worker in self.made)


class _Run:
    """The state of one run, updated by the main thread only."""

    def __init__(self, result: PublishResult, journal: Journal, progress: Progress | None,
                 on_outcome: OnOutcome | None) -> None:
        self.result = result
        self.journal = journal
        self.progress = progress
        self.on_outcome = on_outcome
        self.run_id = uuid.uuid4().hex[:12]
        self.done = 0

    def event(self, item: Item, event: str, reason: str = "", code: str = "") -> Record:
        return Record(event=event, sop_instance_uid=item.sop_instance_uid, sha256=item.sha256,
                      path=item.key, run=self.run_id, time=utc_now(), code=code, reason=reason)

    def take(self, outcomes: Sequence[Outcome]) -> None:
        confirmed = [self.event(o.item, "stored", o.reason, o.code)
                     for o in outcomes if o.confirmed and o.item is not None]
        self.journal.append(confirmed)  # only after the server's own answer
        for outcome in outcomes:
            self.count(outcome)

    def count(self, outcome: Outcome) -> None:
        if outcome.status is Status.SENT:
            self.result.sent += 1
            if outcome.reason:
                self.result.warnings.append(outcome)
        elif outcome.status is Status.ALREADY:
            self.result.already += 1
        elif outcome.status is Status.FAILED:
            self.result.failures.append(outcome)
        if self.on_outcome is not None and (outcome.status is Status.FAILED or outcome.reason):
            self.on_outcome(outcome)
        self.tick()

    def tick(self, count: int = 1) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.result.total)


def _send_all(run: _Run, destination: Destination, tasks: list[list[Item]],
              options: Options, retry: RetryPolicy, senders: _Workers[Sender]) -> None:
    """Send every task; stop early on DestinationError or Ctrl-C (see module docstring)."""

    def work(task: list[Item]) -> list[Outcome]:
        return senders.get().send(task)

    queue = iter(tasks)
    in_flight: dict[cf.Future[list[Outcome]], list[Item]] = {}
    with cf.ThreadPoolExecutor(options.concurrency, thread_name_prefix="publish") as pool:
        try:
            while True:
                while not retry.stop.is_set() and len(in_flight) < 2 * options.concurrency:
                    task = next(queue, None)
                    if task is None:
                        break
                    in_flight[pool.submit(work, task)] = task
                if not in_flight:
                    break
                finished, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    _collect(run, future, in_flight.pop(future), retry)
        except (KeyboardInterrupt, Interrupted) as exc:
            _interrupted(run.result, exc)
            retry.stop.set()
            for future in list(in_flight):
                if future.cancel():
                    run.result.not_sent += len(in_flight.pop(future))
            for future in cf.as_completed(in_flight):
                _collect(run, future, in_flight[future], retry)
    run.result.not_sent += sum(len(task) for task in queue)


def _collect(run: _Run, future: cf.Future[list[Outcome]], task: list[Item],
             retry: RetryPolicy) -> None:
    try:
        run.take(future.result())
    except DestinationError as exc:
        if run.result.stopped is None:
            run.result.stopped = str(exc)
        retry.stop.set()
        run.result.not_sent += len(task)
    except StoppedError:
        run.result.not_sent += len(task)
    except Exception as exc:  # a bug: stop the run with a message (the traceback with -v)
        log.info("unexpected error while sending", exc_info=True)
        if run.result.stopped is None:
            run.result.stopped = f"{run.result.destination}: unexpected error: {exc!r}"
        retry.stop.set()
        run.result.not_sent += len(task)


def _find(verifiers: _Workers[Verifier], item: Item) -> str | None:
    return verifiers.get().find(item)


def _verify(run: _Run, plan: Plan, destination: Destination, options: Options,
            retry: RetryPolicy) -> None:
    """Look up every confirmed file; withdraw the confirmation of each one not found."""
    state = run.journal.state
    confirmed = [i for i in plan.items if state.confirmed(i.sop_instance_uid, i.sha256)]
    verifiers: _Workers[Verifier] = _Workers(lambda: destination.verifier(retry))
    pool = cf.ThreadPoolExecutor(options.concurrency, thread_name_prefix="verify")
    found = 0
    try:
        futures = [pool.submit(_find, verifiers, item) for item in confirmed]
        for item, future in zip(confirmed, futures, strict=True):
            why = future.result()
            if why is None:
                found += 1
                last = state.last.get(item.sop_instance_uid)
                if last is None or last.event != "verified":
                    run.journal.append([run.event(item, "verified")])
                continue
            run.journal.append([run.event(item, "missing", why)])
            outcome = Outcome(item.key, Status.FAILED, why, "missing", item)
            run.result.missing.append(outcome)
            if run.on_outcome is not None:
                run.on_outcome(outcome)
    except DestinationError as exc:
        run.result.stopped = f"verify: {exc}"
    except StoppedError:
        pass
    except (KeyboardInterrupt, Interrupted) as exc:
        _interrupted(run.result, exc)
    finally:
        retry.stop.set()  # wakes workers in a backoff; the pool drops what did not start
        pool.shutdown(wait=True, cancel_futures=True)
        verifiers.close()
    run.result.verified = found



def _interrupted(result: PublishResult, exc: BaseException) -> None:
    """Ctrl-C or SIGTERM: the run ends after the requests in flight; the command exits
    128 + the signal number, as every csv2sr command does (:class:`csv2sr.errors.Interrupted`)."""
    result.interrupted = True
    if isinstance(exc, Interrupted):
        result.interrupt_status = exc.exit_status


def publish(
    plan: Plan,
    destination: Destination,
    journal_path: Path,
    options: Options = Options(),
    *,
    progress: Progress | None = None,
    on_outcome: OnOutcome | None = None,
) -> PublishResult:
    """Publish the plan's files to the destination, resumably (see the module docstring)."""
    started = time.monotonic()
    result = PublishResult(destination.display, journal_path,
                           total=len(plan.items) + len(plan.failures))
    retry = RetryPolicy(attempts=options.attempts, base=options.backoff, cap=options.backoff_cap)
    with Journal(journal_path, destination.display) as journal, destination.context():
        run = _Run(result, journal, progress, on_outcome)
        for failure in plan.failures:
            run.count(failure)
        to_send, confirmed = plan.split(journal.state)
        result.already += len(confirmed)
        run.tick(len(confirmed))
        size = options.batch_files if destination.batched else 1
        tasks = list(batches(to_send, size, options.batch_bytes))
        senders: _Workers[Sender] = _Workers(lambda: destination.sender(retry, to_send))
        try:
            _send_all(run, destination, tasks, options, retry, senders)
        finally:
            senders.close()
            result.associations += senders.opened
        if options.verify and result.stopped is None and not result.interrupted:
            _verify(run, plan, destination, options, retry)
    result.seconds = time.monotonic() - started
    return result
