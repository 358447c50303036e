"""Where a sweep's jobs run: a local process pool, or Ray (a local instance, or a cluster).

Both call the same function on each job and hand each row back as soon as it is done. A job
that raises is its own row's error (run_job catches it); a worker process that dies outright
(a segfault, the OOM killer, os._exit) breaks a ProcessPoolExecutor for every job in it, so
after a break the unfinished jobs run one at a time, where a death names its job.
"""
from __future__ import annotations

import signal
import socket
import warnings
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
        _connect(ray, address, workers)
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


def ray_endpoint(address: str) -> Optional[tuple[str, int]]:
    """(host, port) of a --ray-address (None for auto); UserError when it is neither."""
    from keeper.errors import UserError

    if address == "auto":
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--ray-address wants HOST:PORT (or ray://HOST:PORT, or auto), not {address!r}")
    return host, int(port)


PROBE_S = 5  # a cluster that does not accept a connection in this long is not there


def _connect(ray, address: Optional[str], workers: int) -> None:
    """ray.init, with bad input one line: Ray itself retries an address nobody answers at for
    minutes, printing its C++ client's warnings, so the address's port is tried first."""
    from keeper.errors import UserError

    if address and address != "auto":
        try:
            socket.create_connection(ray_endpoint(address), timeout=PROBE_S).close()
        except OSError as exc:
            raise UserError(f"--ray-address {address}: no Ray cluster answers there "
                            f"({exc.strerror or type(exc).__name__}); start one with `ray start --head`") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Ray's tips about its own future defaults: not the user's to act on
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UserError(f"--backend ray{f' --ray-address {address}' if address else ''}: {exc}") from None
