"""A seed (and price path) fully determines a local run; price-path files are read strictly."""
from __future__ import annotations

from pathlib import Path

import pytest

from keeper.archive.codec import encode
from keeper.errors import UserError
from keeper.model import BASE_PRECISION, Intent, Placement, Plan
from keeper.venues.local import LocalVenue, load_price_path, spec
from keeper.venues.local.specs import params

ALL = ["SOL-PERP", "BTC-PERP", "ETH-PERP", "SOL"]


async def run(seed: int, ticks: int = 150, path=None) -> list:
    """A small quoting loop, so our orders, fills and margin are part of what must repeat."""
    v = LocalVenue(ALL, seed=seed, price_path=path)
    out = []
    for _ in range(ticks):
        snap = await v.snapshot()
        out.append(encode(snap))
        m = snap.markets["SOL-PERP"]
        tick = m.spec.tick_size
        plan = Plan(
            cancels=snap.user.open_orders,
            places=(
                Placement(Intent("SOL-PERP", "bid", BASE_PRECISION, price=(m.oracle_price // tick - 20) * tick), 1),
                Placement(Intent("SOL-PERP", "ask", BASE_PRECISION, price=(m.oracle_price // tick + 20) * tick), 2),
            ),
        )
        out.append(encode(await v.execute(plan, snap)))
    return out


async def test_same_seed_same_run():
    a = await run(11)
    b = await run(11)
    assert a == b
    assert any(s.get("user", {}).get("fills") for s in a if "user" in s)  # the run did trade


async def test_different_seed_differs():
    a = await run(11, ticks=20)
    b = await run(12, ticks=20)
    assert a[0] != b[0] or a[2] != b[2]
    assert a != b


def write(tmp_path: Path, text: str, name: str = "path.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_load_price_path_good_file(tmp_path):
    path = write(tmp_path, "timestamp,price\n1701790320,60.25\n1701790321.5,60.5\n\n1701790330,61\n")
    assert load_price_path(path) == [(1_701_790_320_000, 60_250_000), (1_701_790_321_500, 60_500_000), (1_701_790_330_000, 61_000_000)]
    assert load_price_path(write(tmp_path, "1,2\n3,4\n", "noheader.csv")) == [(1000, 2_000_000), (3000, 4_000_000)]


async def test_price_path_followed_first_market_absolute_others_relative(tmp_path):
    path = load_price_path(write(tmp_path, "ts,price\n1701790320,60\n1701790321,66\n1701790322,54\n"))
    v = LocalVenue(["SOL", "BTC-PERP"], seed=1, price_path=path)
    ref = params("BTC-PERP").reference_price
    expected = [(60_000_000, ref), (66_000_000, ref * 11 // 10), (54_000_000, ref * 9 // 10)]
    for i, (sol, btc) in enumerate(expected + [expected[-1]]):
        snap = await v.snapshot()
        assert snap.ts == 1_701_790_320_000 + 1000 * i
        assert snap.markets["SOL"].oracle_price == sol
        assert snap.markets["BTC-PERP"].oracle_price == btc
    assert snap.slot - (await LocalVenue(["SOL"], price_path=path).snapshot()).slot == 3000 // 400


async def test_default_epoch_and_slots():
    v = LocalVenue(["SOL-PERP"], interval_ms=1000)
    first = await v.snapshot()
    assert first.ts == 1_701_790_320_000  # 2023-12-05T15:32:00Z
    assert first.markets["SOL-PERP"].oracle_price == params("SOL-PERP").reference_price
    second = await v.snapshot()
    assert second.ts - first.ts == 1000 and second.slot - first.slot == 2  # 400 ms slots
    assert second.markets["SOL-PERP"].oracle_slot == second.slot
    assert spec("SOL-PERP") == first.markets["SOL-PERP"].spec


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("", None, "no 'timestamp,price' rows"),
        ("timestamp,price\n", None, "no 'timestamp,price' rows"),
        ("1,60\n2,abc\n", 2, "must be numbers"),
        ("1,60\n2,0\n", 2, "positive"),
        ("1,60\n2,-5\n", 2, "positive"),
        ("1,60\n3,61\n3,62\n", 3, "increase"),
        ("1,60\n3,61\n2,62\n", 3, "increase"),
        ("1,60,7\n", 1, "expected"),
    ],
)
def test_bad_price_path_is_one_line_user_error(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        load_price_path(path)
    msg = str(exc.value)
    assert "\n" not in msg and path in msg and words in msg
    if line is not None:
        assert f"{path}:{line}:" in msg


def test_missing_price_path_is_user_error(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(UserError) as exc:
        load_price_path(missing)
    assert missing in str(exc.value) and "\n" not in str(exc.value)
