"""Where a sweep's jobs run: a local process pool, or Ray (a local instance, or a cluster).

Both call the same function on each job and hand each row back as soon as it is done. A job
that raises is its own row's error (run_job catches it); a worker process that dies outright
(a segfault, the OOM killer, os._exit) breaks a ProcessPoolExecutor for every job in it, so
after a break the unfinished jobs run one at a time, where a death names its job.
"""
from __future__ import annotations

import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Optional, Sequence

BACKENDS = ("process", "ray")


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the sweep; workers must not print tracebacks
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_jobs(work: Callable[[object], dict], jobs: Sequence, on_row: Callable[[object, dict], None], *,
             backend: str = "process", workers: int = 1, ray_address: Optional[str] = None,
             died: Callable[[object, str], dict]) -> None:
    """`work(job)` for every job; `on_row(job, row)` as each finishes; `died(job, why)` makes the
    row of a job whose worker died."""
    if backend == "ray":
        _ray(work, jobs, on_row, workers, ray_address, died)
    else:
        _processes(work, jobs, on_row, workers, died)


def _processes(work, jobs, on_row, workers: int, died) -> None:
    pending = list(jobs)
    alone = False  # after a worker died: one job at a time, so the next death names its job
    while pending:
        pool = ProcessPoolExecutor(max_workers=1 if alone else workers, initializer=_ignore_sigint)
        try:
            if alone:
                job = pending[0]
                try:
                    row = pool.submit(work, job).result()
                except BrokenProcessPool:
                    row = died(job, "its worker process died")
                pending.pop(0)
                on_row(job, row)
                continue
            futures = {pool.submit(work, job): job for job in pending}
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    try:
                        row = future.result()
                    except BrokenProcessPool:
                        alone = True
                        continue
                    pending.remove(job)
                    on_row(job, row)
                if alone:
                    break
        except BaseException:  # Ctrl-C: the running points are abandoned, the finished rows are kept
            _terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    # shutdown() would wait for the running points to finish; a stopped sweep must not
    for process in list((pool._processes or {}).values()):  # noqa: SLF001 (no public way to stop a running worker)
        process.terminate()


def _ray(work, jobs, on_row, workers: int, address: Optional[str], died) -> None:
    try:
        import ray
    except ImportError:
        from keeper.errors import UserError

        raise UserError("--backend ray needs the ray package (pip install -r requirements.lock)") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    try:
        remote = ray.remote(max_retries=0)(work)
        futures = {remote.remote(job): job for job in jobs}
        try:
            while futures:
                done, _ = ray.wait(list(futures), num_returns=1)
                for ref in done:
                    job = futures.pop(ref)
                    try:
                        row = ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayTaskError) as exc:
                        row = died(job, f"its Ray worker failed ({type(exc).__name__})")
                    on_row(job, row)
        except BaseException:
            for ref in futures:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
