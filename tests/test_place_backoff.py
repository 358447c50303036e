"""PlaceBackoff: how long new placements pause after the Drift program refuses them."""
from __future__ import annotations


from keeper.venues.drift.venue import PlaceBackoff


def _left(backoff: PlaceBackoff) -> float:
    return backoff.backoff.left()


def test_pauses_double_per_refusal_in_a_row_up_to_the_cap_and_a_landing_ends_them():
    backoff = PlaceBackoff()
    assert not backoff.paused()
    waits = []
    for _ in range(7):
        backoff.refused("PlacePostOnlyLimitFailure")
        waits.append(round(_left(backoff)))
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.paused() and backoff.reason == "PlacePostOnlyLimitFailure"
    backoff.landed()
    assert not backoff.paused() and backoff.refusals == 0
    backoff.refused("InsufficientCollateral")
    assert round(_left(backoff)) == 1  # a new run of refusals starts from the first pause
