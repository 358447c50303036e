"""What the hypothesis suites (tests/test_fuzz_*.py) share."""
from __future__ import annotations

import logging

from hypothesis import HealthCheck, settings


def fuzz(examples: int) -> settings:
    """A bounded number of cases and no deadline: no timing assertions on a busy machine."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def quiet_keeper_log() -> None:
    """`keeper run` points the "keeper" logger at the test's stderr and a session file; undo that."""
    log = logging.getLogger("keeper")
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    log.propagate = True
