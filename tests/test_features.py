"""strategies/features.py against values worked out by hand."""
from __future__ import annotations

import math

import pytest

from keeper.model import Book, Level, Trade
from strategies.features import (
    EwmaVolatility, FillIntensity, book_imbalance, microprice, mid, trade_flow_imbalance,
)

BOOK = Book(bids=(Level(99, 3), Level(98, 5)), asks=(Level(101, 1), Level(102, 7)))


def test_mid_and_microprice():
    assert mid(BOOK) == 100
    # (99 * 1 + 101 * 3) / (3 + 1) = 402 / 4: the heavy bid pulls it toward the ask
    assert microprice(BOOK) == 100.5
    assert microprice(Book(bids=BOOK.bids)) is None and mid(Book(asks=BOOK.asks)) is None


def test_book_imbalance_over_one_and_two_levels():
    assert book_imbalance(BOOK) == (3 - 1) / (3 + 1)  # 0.5
    assert book_imbalance(BOOK, depth=2) == (8 - 8) / 16  # 0.0
    assert book_imbalance(Book()) is None


def test_trade_flow_imbalance():
    trades = [Trade(100, 4, "bid"), Trade(100, 1, "ask"), Trade(101, 5, "bid")]
    assert trade_flow_imbalance(trades) == (9 - 1) / 10
    assert trade_flow_imbalance([]) is None


def test_ewma_volatility_by_hand():
    vol = EwmaVolatility(halflife_s=1.0)
    assert vol.update(0, 100.0) is None  # no return yet
    # first return over 1 s: var = ln(101/100)^2 / 1
    r1 = math.log(1.01)
    assert vol.update(1000, 101.0) == pytest.approx(abs(r1))
    # second over 2 s: a = 1 - exp(-2 ln2 / 1) = 0.75; var = 0.25 var + 0.75 r2^2 / 2
    r2 = math.log(100 / 101)
    expected = math.sqrt(0.25 * r1 ** 2 + 0.75 * r2 ** 2 / 2)
    assert vol.update(3000, 100.0) == pytest.approx(expected)
    assert vol.update(3000, 250.0) == pytest.approx(expected)  # same timestamp: nothing to learn


def test_fill_intensity_recovers_a_known_exponential():
    # Over 100 s, trades at distances chosen so that the count reaching each grid point is
    # exactly 100 * 2 * exp(-0.2 d) rounded: A = 2 per second, kappa = 0.2 per bps.
    est = FillIntensity(window_s=1_000, min_trades=1)
    grid = FillIntensity.GRID_BPS
    reaching = [round(200 * math.exp(-0.2 * d)) for d in grid]
    distances = []
    for k, d in enumerate(grid):  # trades between grid points k and k+1
        beyond = reaching[k + 1] if k + 1 < len(grid) else 0
        distances += [d] * (reaching[k] - beyond)
    mid_price = 100 * 10**6  # $100 in price precision: 1 bps is 10_000
    est.observe(0, mid_price, [])
    est.observe(100_000, mid_price, [Trade(mid_price + round(d * 10_000), 1, "bid") for d in distances])
    a, kappa = est.fit()
    # the least-squares line through ln(count/100 s) is exact up to the rounding of counts
    assert kappa == pytest.approx(0.2, rel=0.05)
    assert a == pytest.approx(2.0, rel=0.1)


def test_fill_intensity_hand_fit_of_three_points():
    est = FillIntensity(window_s=1_000, min_trades=3)
    # distances 0.5, 1 and 2 bps from the mid: counts reaching
    # the grid points 0.5, 1, 2 are 3, 2, 1 over 10 s
    mid_price = 100 * 10**6
    est.observe(0, mid_price, [])
    est.observe(10_000, mid_price, [Trade(mid_price + 5_000, 1, "bid"), Trade(mid_price - 10_000, 1, "ask"),
                                    Trade(mid_price + 20_000, 1, "bid")])
    xs, ys = [0.5, 1, 2], [math.log(0.3), math.log(0.2), math.log(0.1)]
    mx, my = sum(xs) / 3, sum(ys) / 3
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a, kappa = est.fit()
    assert kappa == pytest.approx(-slope)
    assert a == pytest.approx(math.exp(my - slope * mx))


def test_fill_intensity_needs_enough_trades_and_forgets_old_ones():
    est = FillIntensity(window_s=10, min_trades=2)
    est.observe(0, 100 * 10**6, [Trade(100_010_000, 1, "bid")])
    assert est.fit() is None  # one trade
    est.observe(20_000, 100 * 10**6, [Trade(100_020_000, 1, "bid")])
    assert len(est.trades) == 1  # the first fell out of the 10 s window
