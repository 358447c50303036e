"""Progress of a long job over a known total: a rich bar with a rate and an ETA on a terminal,
else one plain line at every 10%, so a log or a CI run shows it moving without a screenful of
redraws (one line per update at most: a short job that jumps to its end says just 100%). It
goes to stderr: stdout keeps only the job's result.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Optional

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

REFRESH_S = 0.1  # the bar is redrawn at most this often; updates between redraws cost one clock read


class _Rate(ProgressColumn):
    """Items per second: the job's count, not the units of its total (bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        count = task.fields.get("count", 0)
        rate = count / elapsed if elapsed else 0.0
        return Text(f"{count:,} {self.unit} {_rate(rate)} {self.unit}/s", style="progress.data.speed")


class Progress:
    """`update(done, count)`: `done` of `total` (bytes, say) and `count` items so far."""

    def __init__(self, label: str, total: int, unit: str, stream: Optional[IO[str]] = None,
                 terminal: Optional[bool] = None) -> None:
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        self.started = time.monotonic()
        self._next_draw = 0.0
        self._tenths = 0  # plain lines printed: 10%, 20%, ...
        self._done = self._count = 0
        self._bar: Optional[RichProgress] = None
        if self.terminal:
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), _Rate(unit),
                TextColumn("eta"), TimeRemainingColumn(),
                console=Console(file=self.stream), auto_refresh=False,
            )
            self._task = self._bar.add_task(label, total=self.total, count=0)
            self._bar.start()

    def update(self, done: int, count: int) -> None:
        self._done, self._count = done, count
        if self._bar is not None:
            now = time.monotonic()
            if now >= self._next_draw:
                self._next_draw = now + REFRESH_S
                self._bar.update(self._task, completed=min(done, self.total), count=count, refresh=True)
            return
        # 100% is close()'s: said with the final count, not the one when the last byte was read;
        # an update past several marks says the last of them, with the count it has
        tenths = done * 10 // self.total
        if self._tenths < tenths < 10:
            self._tenths = tenths
            self._line(tenths * 10)

    def close(self, finished: bool = True) -> None:
        """The job is over: the bar full, or the lines up to 100%; left as it is when it failed."""
        if self._bar is not None:
            # the last update may have fallen between redraws: the bar is left showing where the job got to
            completed = self.total if finished else min(self._done, self.total)
            self._bar.update(self._task, completed=completed, count=self._count, refresh=True)
            self._bar.stop()
            self._bar = None
            return
        if finished and self._tenths < 10:
            self._tenths = 10
            self._line(100)

    def _line(self, percent: int) -> None:
        elapsed = time.monotonic() - self.started
        rate = self._count / elapsed if elapsed > 0 else 0.0
        left = elapsed * (self.total - min(self._done, self.total)) / self._done if self._done and percent < 100 else 0.0
        print(f"{self.label}: {percent:3d}% {self._count:,} {self.unit}, {_rate(rate)} {self.unit}/s, "
              f"{elapsed:.1f} s elapsed, eta {left:.0f} s", file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(finished=kind is None)


def _rate(per_second: float) -> str:
    # a sweep's replays can take seconds each: "0 replays/s" would say nothing
    return f"{per_second:,.0f}" if per_second >= 1 or not per_second else f"{per_second:.2f}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
