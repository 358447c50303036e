from keeper.accounting import Ledger, quote_value
from keeper.model import BASE_PRECISION, Fill
from keeper.report import Report
from tests.conftest import market, snapshot


def fill(side, price, size, fee=0, market="SOL-PERP"):
    return Fill(market, side, price, size, fee, 1, 1, True, 0)


def test_average_cost_open_add_reduce_flip():
    ledger = Ledger(BASE_PRECISION)
    ledger.apply(fill("bid", 100_000_000, 2 * BASE_PRECISION))
    ledger.apply(fill("bid", 110_000_000, 2 * BASE_PRECISION))
    assert ledger.base == 4 * BASE_PRECISION and ledger.entry_price() == 105_000_000
    ledger.apply(fill("ask", 120_000_000, 1 * BASE_PRECISION))
    assert ledger.realized == 15_000_000  # (120 - 105) * 1
    ledger.apply(fill("ask", 100_000_000, 5 * BASE_PRECISION))  # close 3 at 100, open short 2
    assert ledger.realized == 15_000_000 - 15_000_000
    assert ledger.base == -2 * BASE_PRECISION and ledger.entry_price() == 100_000_000
    assert ledger.unrealized(90_000_000) == 20_000_000  # short 2 from 100 to 90
    assert ledger.max_inventory == 4 * BASE_PRECISION


def test_fees_and_rebates_enter_total_pnl():
    ledger = Ledger(BASE_PRECISION)
    ledger.apply(fill("bid", 100_000_000, BASE_PRECISION, fee=-20_000))
    ledger.apply(fill("ask", 101_000_000, BASE_PRECISION, fee=-20_200))
    assert ledger.total_pnl(101_000_000) == 1_000_000 + 40_200
    assert ledger.volume == 201_000_000


def test_quote_value_truncates_toward_zero():
    assert quote_value(-1, 1, 3) == 0 and quote_value(1, 5, 3) == 1


def test_report_tracks_drawdown_and_inventory():
    report = Report()
    report.observe(snapshot({"SOL-PERP": market(oracle=100_000_000)}))
    s = snapshot({"SOL-PERP": market(oracle=100_000_000)})
    s = s.__class__(s.ts, s.slot, s.markets, s.user.__class__(0, 0, {}, (), (fill("bid", 100_000_000, BASE_PRECISION),)))
    report.observe(s)
    report.observe(snapshot({"SOL-PERP": market(oracle=110_000_000)}))
    report.observe(snapshot({"SOL-PERP": market(oracle=95_000_000)}))
    summary = report.summary()
    row = summary["markets"]["SOL-PERP"]
    assert row["fills"] == 1 and row["unrealized_pnl_usd"] == -5.0
    assert row["max_drawdown_usd"] == 15.0  # peak +10, trough -5
    assert row["max_inventory_usd"] == 110.0
    assert summary["total"]["total_pnl_usd"] == -5.0


def test_funding_remainders_carry_so_short_accruals_pay_what_one_long_one_would():
    rate = 12_345_678  # quote per base per hour, 1e9
    one, many = Ledger(BASE_PRECISION), Ledger(BASE_PRECISION)
    for ledger in (one, many):
        ledger.apply(fill("bid", 100_000_000, 3 * BASE_PRECISION))
    one.accrue_funding(rate, 3_600_000)
    for _ in range(3600):
        many.accrue_funding(rate, 1_000)
    assert one.funding == many.funding == -37_037  # a long pays 3 x $0.012345678, truncated
    short = Ledger(BASE_PRECISION)
    short.apply(fill("ask", 100_000_000, BASE_PRECISION))
    assert short.accrue_funding(rate, 3_600_000) == 12_345
