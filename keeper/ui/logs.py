"""Where `keeper run`'s log records go: all of them to the session's keeper.log; to the screen
each distinct line once a minute with a count (the tick line comes every N ticks: see
keeper/ui/live.py), and on a terminal only the warnings.

While the live view runs the screen is a panel inside it, never raw stderr under it, and what
libraries print (driftpy print()s "Websocket closed, reconnecting..." and request timeouts)
is caught from sys.stdout/sys.stderr and logged like a warning. Records logged before the
session folder exists (the keypair-permission warning) are kept and written to keeper.log
once it opens.
"""
from __future__ import annotations

import collections
import contextlib
import io
import logging
import sys
import threading
import time
from typing import Callable, Optional

log = logging.getLogger("keeper")

FILE_ONLY = {"screen": False}  # extra=: keeper.log only (the summary: stdout prints it)
GROUPED = {"screen": "grouped"}  # extra=: a warning already said once a minute with a count: shown as it is
REPEAT_WINDOW_S = 60.0
PANEL_LINES = 6
FORMAT = "%(asctime)s %(levelname)s %(message)s"


def span(seconds: float) -> str:
    return "the last minute" if seconds >= REPEAT_WINDOW_S - 1e-9 else f"the last {max(1, round(seconds))} s"


class Repeats:
    """Says a message the first time it comes, then at most once a window with how often it came
    since; a message that stops coming is forgotten after a quiet window. Time is whatever
    clock the caller passes (a snapshot's, so a --fast run groups by simulated minutes)."""

    def __init__(self, say: Callable[[str, int, float], None], window_s: float = REPEAT_WINDOW_S):
        self._say = say  # say(key, count, seconds): count 0 for the first time
        self.window_s = window_s
        self._open: dict[str, list] = {}  # key -> [window start, repeats since]

    def note(self, key: str, now: float) -> None:
        self.poll(now)
        entry = self._open.get(key)
        if entry is None:
            self._open[key] = [now, 0]
            self._say(key, 0, 0.0)
        else:
            entry[1] += 1

    def poll(self, now: float) -> None:
        for key, (start, count) in list(self._open.items()):
            if now - start < self.window_s:
                continue
            if count:
                self._say(key, count, now - start)
                self._open[key] = [now, 0]
            else:
                del self._open[key]

    def flush(self, now: float) -> None:
        """At the end: the repeats not said yet."""
        for key, (start, count) in self._open.items():
            if count:
                self._say(key, count, now - start)
        self._open.clear()


class Screen(logging.Handler):
    """The user's view of the log: on stderr, or into the live view's panel while it runs."""

    def __init__(self, stream, infos: bool = True) -> None:
        super().__init__(logging.INFO)
        self.stream = stream  # the real stderr, taken before any capture
        self.infos = infos  # INFO lines too (without a terminal; on one the live view shows the ticks)
        self.panel: Optional[collections.deque] = None
        self._levels: dict[str, int] = {}
        self.repeats = Repeats(self._repeat)

    def emit(self, record: logging.LogRecord) -> None:
        screen = getattr(record, "screen", None)
        if screen is False or (record.levelno < logging.WARNING and not self.infos):
            return
        text = record.getMessage()
        if screen == "grouped":
            self._show(record.levelno, text)
            return
        self._levels[text] = record.levelno
        self.repeats.note(text, record.created)

    def _repeat(self, text: str, count: int, seconds: float) -> None:
        self._show(self._levels.get(text, logging.WARNING), f"{text} (x{count} more in {span(seconds)})" if count else text)

    def _show(self, level: int, text: str) -> None:
        when = time.strftime('%H:%M:%S')
        if self.panel is not None:  # all warnings there: the colour says which are errors
            self.panel.append((level, f"{when} {text}"))
            return
        line = f"{when} {logging.getLevelName(level) + ' ' if level >= logging.WARNING else ''}{text}"
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe: the log file still has it
            pass

    def poll(self) -> None:
        with self.lock:
            self.repeats.poll(time.time())

    def flush_repeats(self) -> None:
        with self.lock:
            self.repeats.flush(time.time())

    def lines(self) -> list[tuple[int, str]]:
        with self.lock:
            return list(self.panel or ())

    @contextlib.contextmanager
    def into_panel(self):
        with self.lock:
            self.panel = collections.deque(maxlen=PANEL_LINES)
        try:
            yield self
        finally:
            with self.lock:
                self.panel = None


class Printed(io.TextIOBase):
    """sys.stdout/sys.stderr while a session runs: each line written becomes a log warning."""

    def __init__(self, name: str, original) -> None:
        self.name, self.original = name, original
        self._pending = ""
        self._lock = threading.RLock()
        self._inside = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._inside, "on", False):  # logging itself printing: let it through
            return self.original.write(text)
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._log(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        self._log(line)

    def _log(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        self._inside.on = True
        try:
            logging.getLogger("keeper.printed").warning("%s: %s", self.name, line)
        finally:
            self._inside.on = False


class SessionLog:
    """keeper.log, the screen, and the capture of what libraries print, for one `keeper run`."""

    def __init__(self, interactive: bool) -> None:
        log.setLevel(logging.INFO)
        log.propagate = False
        logging.raiseExceptions = False  # a full disk must not print logging's tracebacks: the archive error says it
        for handler in list(log.handlers):
            log.removeHandler(handler)
        self.early: list[logging.LogRecord] = []
        self._keep = _Keep(self.early)
        log.addHandler(self._keep)
        # Until the session folder opens, only problems reach the screen: a run refused at the
        # start (bad input, mainnet unconfirmed) says one line, not the INFO lines before it.
        self.screen = Screen(sys.stderr, infos=False)
        self._infos = not interactive
        log.addHandler(self.screen)

    def open_file(self, path) -> None:
        """keeper.log in the session folder, starting with what was logged before it existed."""
        to_file = logging.FileHandler(path, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(FORMAT))
        for record in self.early:
            to_file.handle(record)
        log.removeHandler(self._keep)
        self.early.clear()
        log.addHandler(to_file)
        self.screen.infos = self._infos

    @contextlib.contextmanager
    def capture(self):
        """Library prints into the log while the session runs."""
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Printed("stdout", saved[0]), Printed("stderr", saved[1])
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            sys.stdout, sys.stderr = saved
            self.screen.flush_repeats()


class _Keep(logging.Handler):
    def __init__(self, into: list) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)
