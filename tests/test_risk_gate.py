"""The risk gate's limits, breakers and states, on explicit snapshots in Drift precisions."""
from __future__ import annotations

import subprocess

import pytest

from keeper.errors import UserError
from keeper.model import BASE_PRECISION, PRICE_PRECISION, QUOTE_PRECISION, Intent, Position, UserState, replace
from keeper.risk import ACTIVE, HALTED, REDUCING, AccountLimits, MarketLimits, RiskConfig, RiskGate, from_dict, load
from keeper.venues.local.specs import names, spec as local_spec
from tests.conftest import KEEPER, market, snapshot

ORACLE = 85 * PRICE_PRECISION
SOL = 10**9  # 1 SOL, perp base precision


def bid(size=SOL, price=84 * PRICE_PRECISION, **kw):
    return Intent("SOL-PERP", "bid", size, price=price, **kw)


def ask(size=SOL, price=86 * PRICE_PRECISION, **kw):
    return Intent("SOL-PERP", "ask", size, price=price, **kw)


def snap(position: int = 0, equity: int = 10_000 * QUOTE_PRECISION, free: int | None = None):
    positions = {"SOL-PERP": Position("SOL-PERP", position, ORACLE, 0, 0)} if position else {}
    s = snapshot({"SOL-PERP": market(oracle=ORACLE)}, positions=positions)
    return replace(s, user=UserState(equity, equity if free is None else free, positions))


def gate(**account) -> RiskGate:
    return RiskGate(RiskConfig(MarketLimits(), {}, AccountLimits(**account)))


# -- limits ------------------------------------------------------------------------------------
def test_order_size_is_trimmed_to_the_notional_cap_in_whole_steps():
    g = RiskGate(RiskConfig(MarketLimits(max_order_quote=100 * QUOTE_PRECISION)))
    kept, notes = g.check([bid(10 * SOL)], snap())
    # $100 at $84 is 1.190476 SOL; the step is 0.01 SOL
    assert [i.size for i in kept] == [1_190_000_000]
    assert notes == ["risk max_order: SOL-PERP bid trimmed from 10000000000 to 1190000000"]


def test_position_limit_counts_the_position_and_every_resting_order_on_that_side():
    g = RiskGate(RiskConfig(MarketLimits(max_position_quote=1_000 * QUOTE_PRECISION)))
    long_10 = snap(position=10 * SOL)  # $850 long already
    kept, notes = g.check([bid(2 * SOL), bid(2 * SOL, price=83 * PRICE_PRECISION), ask(5 * SOL)], long_10)
    # room on the bid side: $1,000 / $84 = 11.90 SOL, less 10 held: 1.90; then at $83,
    # 12.04 SOL less the 11.90 now counted: 0.14. Asks shrink the long: untouched.
    assert [(i.side, i.size) for i in kept] == [("bid", 1_900_000_000), ("bid", 140_000_000), ("ask", 5 * SOL)]
    assert notes == ["risk max_position: SOL-PERP bid trimmed from 2000000000 to 1900000000",
                     "risk max_position: SOL-PERP bid trimmed from 2000000000 to 140000000"]


def test_position_limit_in_base_units():
    g = RiskGate(RiskConfig(MarketLimits(max_position_base=from_dict({"defaults": {"max_position_base": 3}}).defaults.max_position_base)))
    kept, _ = g.check([bid(5 * SOL)], snap(position=-1 * SOL))
    assert [i.size for i in kept] == [3 * SOL]  # long side: nothing held yet


def test_reduce_only_always_passes():
    g = RiskGate(RiskConfig(MarketLimits(max_order_quote=1 * QUOTE_PRECISION, band_bps=1)))
    reducing = ask(5 * SOL, price=95 * PRICE_PRECISION, reduce_only=True)
    kept, notes = g.check([reducing], snap(position=5 * SOL, free=0))
    assert kept == [reducing] and notes == []


def test_price_band_drops_quotes_far_from_the_oracle():
    kept, notes = RiskGate().check([bid(price=80 * PRICE_PRECISION), ask(price=89 * PRICE_PRECISION)], snap())
    assert [i.side for i in kept] == ["ask"]  # $89 is 4.7% away, $80 is 5.9%
    assert notes[0].startswith("risk band: SOL-PERP bid at 80000000 is more than 500 bps")


def test_floating_quotes_are_banded_on_their_effective_price():
    far = Intent("SOL-PERP", "bid", SOL, oracle_offset=-6 * PRICE_PRECISION)
    near = Intent("SOL-PERP", "ask", SOL, oracle_offset=1 * PRICE_PRECISION)
    assert RiskGate().check([far, near], snap())[0] == [near]


def test_low_free_collateral_stops_new_exposure():
    kept, notes = RiskGate().check([bid(), ask()], snap(free=100 * QUOTE_PRECISION))
    assert kept == [] and all(n.startswith("risk min_free_collateral") for n in notes)


def test_leverage_cap_counts_gross_exposure_against_equity():
    # 1x on $1,000 of equity; a large drawdown budget keeps the drawdown cover out of this test
    g = gate(max_leverage_pct=100, budget_quote=10**6 * QUOTE_PRECISION)
    kept, notes = g.check([bid(20 * SOL)], snap(equity=1_000 * QUOTE_PRECISION))
    assert [i.size for i in kept] == [11_760_000_000]  # $1,000 / $85 oracle
    assert notes[0].startswith("risk max_leverage")


# -- the drawdown cover: the hard limit holds through one-tick jumps ----------------------------------
def test_exposure_is_capped_by_what_is_left_of_the_hard_limit_over_the_jump_cover():
    g = gate(hard_drawdown_pct=20, soft_drawdown_pct=10, jump_cover_down_pct=100, jump_cover_up_pct=200)
    start = snap(equity=10_000 * QUOTE_PRECISION)
    g.check([], start)  # peak $10,000: $2,000 may be lost
    kept, notes = g.check([bid(50 * SOL), ask(50 * SOL)], start)
    # long: $2,000 / 100% at the $85 oracle = 23.52 SOL; short: $2,000 / 200% = 11.76 SOL
    assert [(i.side, i.size) for i in kept] == [("bid", 23_520_000_000), ("ask", 11_760_000_000)]
    assert all(n.startswith("risk drawdown_cover") for n in notes)
    # $1,500 down from the peak: $500 left, so 5.88 SOL long at most
    kept, _ = g.check([bid(50 * SOL)], snap(equity=8_500 * QUOTE_PRECISION))
    assert [i.size for i in kept] == [5_880_000_000]


def test_a_position_that_outgrew_the_cover_is_cut_with_a_reduce_only_order():
    g = gate(hard_drawdown_pct=20, soft_drawdown_pct=10)
    g.check([], snap(equity=10_000 * QUOTE_PRECISION))
    # 20 SOL long ($1,700) with $1,800 lost: $200 left covers $200 of longs: 2.36 SOL
    kept, notes = g.check([bid(SOL)], snap(position=20 * SOL, equity=8_200 * QUOTE_PRECISION))
    (cut,) = kept
    assert (cut.side, cut.reduce_only, cut.post_only) == ("ask", True, False)
    assert cut.size == 17_650_000_000  # 17.65 SOL leaves 2.35 SOL: $199.75 long, inside the $200
    assert cut.price == 84_575_000  # takes the book, at most reduce_cross_bps (50) under the oracle
    assert any(n.startswith("risk drawdown_cover: SOL-PERP cut by 17650000000") for n in notes)
    assert any("drawdown_cover: SOL-PERP bid" in n for n in notes)  # no new longs


SOL_SPOT = local_spec("SOL")  # maintenance asset weight 90%
BTC_PERP = local_spec("BTC-PERP")


def hedged(perp: int, spot: int, equity: int, btc: int = 0):
    """SOL-PERP `perp` and SOL spot `spot` (base), both at the $85 oracle; BTC-PERP `btc` at $40,000."""
    markets = {"SOL-PERP": market(oracle=ORACLE), "SOL": market(SOL_SPOT, oracle=ORACLE),
               "BTC-PERP": market(BTC_PERP, oracle=40_000 * PRICE_PRECISION)}
    positions = {name: Position(name, base, 0, 0, 0) for name, base in
                 (("SOL-PERP", perp), ("SOL", spot), ("BTC-PERP", btc)) if base}
    s = snapshot(markets, positions=positions)
    return replace(s, user=UserState(equity, equity, positions))


def test_a_perp_short_hedged_by_spot_deposits_counts_only_what_the_deposits_weight_leaves():
    g = gate(hard_drawdown_pct=20, soft_drawdown_pct=10, jump_cover_up_pct=200)
    g.check([], hedged(0, 0, 10_000 * QUOTE_PRECISION))  # $2,000 may be lost: $1,000 of shorts on a 200% rise
    # 20 SOL short ($1,700) against 20 SOL deposited ($1,700 at 90%: $1,530): $170 short, inside the cover
    kept, notes = g.check([ask(5 * SOL)], hedged(-20 * SOL, 20 * SOL, 10_000 * QUOTE_PRECISION))
    assert [(i.side, i.size) for i in kept] == [("ask", 5 * SOL)] and not notes  # unhedged: 20 SOL cut, no ask
    # what the cover has left, $830, goes on new shorts: 9.76 SOL at $85
    kept, notes = g.check([ask(20 * SOL)], hedged(-20 * SOL, 20 * SOL, 10_000 * QUOTE_PRECISION))
    assert [i.size for i in kept] == [9_760_000_000] and notes[0].startswith("risk drawdown_cover: SOL-PERP ask")


def test_different_assets_do_not_hedge_each_other():
    g = gate(hard_drawdown_pct=20, soft_drawdown_pct=10, jump_cover_up_pct=200)
    g.check([], hedged(0, 0, 10_000 * QUOTE_PRECISION))
    # 0.02 BTC long ($800) does not offset 11 SOL short ($935): a rise need not lift BTC too
    kept, notes = g.check([ask(SOL)], hedged(-11 * SOL, 0, 10_000 * QUOTE_PRECISION, btc=20_000_000))
    assert [i.size for i in kept] == [760_000_000]  # $1,000 - $935 = $65 of room: 0.76 SOL, in whole steps
    assert not any("cut by" in n for n in notes)


def test_a_cut_never_undoes_a_hedge():
    g = gate(hard_drawdown_pct=20, soft_drawdown_pct=10, jump_cover_up_pct=200)
    g.check([], hedged(0, 0, 10_000 * QUOTE_PRECISION))
    # $1,900 lost: $100 left covers $50 of shorts. 40 SOL short ($3,400) against 30 SOL deposited
    # ($2,295 counted): $1,105 net short, so the perp is cut by $1,055 (12.42 SOL), the deposits kept
    kept, notes = g.check([], hedged(-40 * SOL, 30 * SOL, 8_100 * QUOTE_PRECISION))
    (cut,) = kept
    assert (cut.market, cut.side, cut.reduce_only, cut.size) == ("SOL-PERP", "bid", True, 12_420_000_000)
    assert notes == ["risk drawdown_cover: SOL-PERP cut by 12420000000 to fit what is left of the hard limit"]


def test_with_the_breakers_off_there_is_no_cover():
    g = gate(breakers=False)
    g.check([], snap())
    kept, _ = g.check([bid(20 * SOL)], snap(equity=8_200 * QUOTE_PRECISION))
    assert [i.size for i in kept] == [20 * SOL]  # the cover would have allowed 2.35 SOL


# -- liquidation awareness: Drift's maintenance margin --------------------------------------------
def _margined(position: int, collateral: int, requirement: int):
    s = snap(position=position, equity=collateral)
    return replace(s, user=replace(s.user, maintenance_collateral=collateral,
                                                          maintenance_requirement=requirement))


def test_orders_that_would_bring_the_account_near_liquidation_are_trimmed():
    # a large drawdown budget and leverage cap keep the other rules out of this test
    g = gate(liquidation_buffer_pct=50, budget_quote=10**6 * QUOTE_PRECISION, max_leverage_pct=100_000)
    # $1,000 of maintenance collateral, $400 required: with a 50% buffer, $100 more may be required,
    # at SOL-PERP's 3% maintenance ratio $3,333.33 of position: 39.21 SOL at the $85 oracle
    kept, notes = g.check([bid(30 * SOL), bid(30 * SOL, price=83 * PRICE_PRECISION)], _margined(0, 1_000 * QUOTE_PRECISION,
                                                                                          400 * QUOTE_PRECISION))
    assert [i.size for i in kept] == [29_760_000_000, 9_450_000_000]  # max_order first, then the buffer binds
    assert any(n.startswith("risk liquidation_buffer: SOL-PERP bid trimmed") for n in notes), notes
    # already past the buffer: nothing that adds to the worst case, but reducing passes
    kept, notes = g.check([bid(SOL), ask(SOL)], _margined(10 * SOL, 1_000 * QUOTE_PRECISION, 600 * QUOTE_PRECISION))
    assert [i.side for i in kept] == ["ask"]
    assert notes[0].startswith("risk liquidation_buffer: SOL-PERP bid of 1000000000 dropped")


def test_without_maintenance_figures_there_is_no_buffer_rule():
    g = gate(liquidation_buffer_pct=50, budget_quote=10**6 * QUOTE_PRECISION)
    kept, _ = g.check([bid(20 * SOL)], snap())
    assert [i.size for i in kept] == [20 * SOL]


# -- breakers and states -------------------------------------------------------------------------
def test_soft_breaker_widens_and_cuts_quotes():
    g = gate(soft_drawdown_pct=10, hard_drawdown_pct=20, soft_widen_bps=10, soft_size_pct=50)
    g.check([], snap(equity=10_000 * QUOTE_PRECISION))
    kept, notes = g.check([bid(2 * SOL), ask(2 * SOL)], snap(equity=8_900 * QUOTE_PRECISION))
    assert g.state == ACTIVE and g.breaker == "soft"
    widen = 85_000  # 10 bps of $85, in whole $0.0001 ticks
    assert [(i.price, i.size) for i in kept] == [(84 * PRICE_PRECISION - widen, SOL), (86 * PRICE_PRECISION + widen, SOL)]
    assert any("soft breaker" in n for n in notes)
    g.check([bid()], snap(equity=9_500 * QUOTE_PRECISION))
    assert g.breaker == "none"  # the soft level lifts when equity recovers


def test_hard_breaker_reduces_then_halts_when_flat():
    g = gate(soft_drawdown_pct=10, hard_drawdown_pct=20)
    g.check([], snap(equity=10_000 * QUOTE_PRECISION))
    kept, notes = g.check([bid(), ask()], snap(position=3 * SOL, equity=7_900 * QUOTE_PRECISION))
    assert g.state == REDUCING and "hard drawdown breaker" in g.reason
    # the strategy is set aside; a reduce-only ask that takes the book, 50 bps under the oracle
    assert [(i.side, i.size, i.reduce_only, i.post_only, i.price) for i in kept] == [
        ("ask", 3 * SOL, True, False, 84_575_000)]
    assert notes == ["risk REDUCING: SOL-PERP bid dropped (reduce-only until flat)",
                     "risk REDUCING: SOL-PERP ask dropped (reduce-only until flat)"]
    # a recovery does not undo it
    kept, _ = g.check([bid()], snap(position=1 * SOL, equity=10_000 * QUOTE_PRECISION))
    assert g.state == REDUCING
    assert [(i.side, i.size) for i in kept] == [("ask", SOL)]  # whatever the strategy wants
    kept, _ = g.check([bid(), ask()], snap(position=0))
    assert g.state == HALTED and kept == []
    assert g.check([bid()], snap())[0] == []


def test_breakers_can_be_turned_off_for_comparison():
    g = gate(breakers=False)
    g.check([], snap(equity=10_000 * QUOTE_PRECISION))
    kept, _ = g.check([bid()], snap(equity=1_000 * QUOTE_PRECISION))
    assert g.state == ACTIVE and kept == [bid()]
    assert g.drawdown.max_drawdown == 9_000 * QUOTE_PRECISION


def test_halt_drops_everything():
    g = RiskGate()
    g.halt("kill switch: test")
    kept, notes = g.check([bid(), ask()], snap())
    assert kept == [] and g.state == HALTED
    assert notes == ["risk HALTED (kill switch: test): all intents dropped"]


# -- the risk file -------------------------------------------------------------------------------
def test_risk_file_is_read_in_human_units(tmp_path):
    path = tmp_path / "risk.toml"
    path.write_text('[defaults]\nmax_order_usd = 250.5\n[markets."SOL-PERP"]\nmax_position_base = 12.5\n'
                    '[account]\nmax_leverage = 2.5\nsoft_drawdown_pct = 5\nhard_drawdown_pct = 15\n')
    config = load(str(path))
    assert config.defaults.max_order_quote == 250_500_000
    assert config.limits("SOL-PERP").max_order_quote == 250_500_000  # inherits the defaults
    assert config.limits("SOL-PERP").position_base(BASE_PRECISION) == 12_500_000_000
    assert config.account.max_leverage_pct == 250 and config.account.hard_drawdown_pct == 15


@pytest.mark.parametrize("text, message", [
    ("[defaults]\nmax_order_usd = -1\n", "at defaults.max_order_usd: -1 is less than or equal to the minimum of 0"),
    ("[account]\nmax_levrage = 2\n", "at account: no key named 'max_levrage' (did you mean max_leverage?); valid: "),
    ("[default]\nmax_order_usd = 1\n",
     "at the top level: no section named 'default' (did you mean defaults?); valid: account, defaults, markets"),
    ('[markets."SOL-PERP"]\nmax_ordr_usd = 1\n', "at markets.SOL-PERP: no key named 'max_ordr_usd' (did you mean max_order_usd?)"),
    ('[markets."sol-perp"]\nmax_position_usd = 1000\n',
     "[markets.'sol-perp']: no market named 'sol-perp' (did you mean SOL-PERP?); valid: BTC-PERP, ETH-PERP, SOL, SOL-PERP"),
    ("[account]\nsoft_drawdown_pct = 30\nhard_drawdown_pct = 20\n", "soft_drawdown_pct (30) must be below hard_drawdown_pct (20)"),
    ("[defaults\n", "not valid TOML"),
    ('[markets."SOL-PERP"]\nband_bps = 1.5\n', "at markets.SOL-PERP.band_bps: 1.5 is not of type 'integer'"),
])
def test_bad_risk_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=None) as caught:
        load(str(path)).check_markets(names())
    assert message in str(caught.value) and "\n" not in str(caught.value)
    result = subprocess.run([*KEEPER, "run", "--risk", str(path), "--ticks", "1", "--fast"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "data").exists(), "refused before a session was opened"
