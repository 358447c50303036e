"""Liquidation once maintenance margin is breached, as Drift's liquidate_perp does it.

The program first cancels the user's open orders; if the account is still below maintenance,
a liquidator takes over enough of the largest perp position to bring it back above the
maintenance requirement plus the liquidation buffer. The liquidator takes it at the oracle
less its fee (liquidator_fee), and the insurance fund charges if_liquidation_fee on the
notional: a liquidated long sells at oracle x (1 - liquidator_fee) and pays the IF fee besides.
The fees are the localnet perps' (keeper/localnet/genesis.py writes these very constants),
which are mainnet's. Spot borrows are not liquidated here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from keeper.accounting import quote_value
from keeper.model import MARGIN_PRECISION

if TYPE_CHECKING:
    from keeper.venues.sim.exchange import Exchange

LIQUIDATION_FEE_PRECISION = 1_000_000
LIQUIDATOR_FEE = 7_500  # PerpMarket.liquidator_fee: 0.75%
IF_LIQUIDATION_FEE = 12_500  # PerpMarket.if_liquidation_fee: 1.25%
MARGIN_BUFFER = 200  # State.liquidation_margin_buffer_ratio, per MARGIN_PRECISION (the program's default)


def liquidate(ex: Exchange) -> bool:
    """Liquidate our account if it is below maintenance; True if anything was liquidated."""
    acct = ex.account
    oracles = ex.oracles()
    if not acct.below_maintenance(oracles):
        return False
    ex.cancel_all(keeper_only=False)
    perps = sorted((n for n, s in acct.specs.items() if s.kind == "perp" and acct.ledgers[n].base),
                   key=lambda n: -abs(quote_value(acct.ledgers[n].base, oracles[n], acct.specs[n].base_precision)))
    for name in perps:
        shortage = _requirement_with_buffer(ex, oracles) - acct.total_collateral(oracles, maintenance=True)
        if shortage <= 0:
            break
        spec, base, px = acct.specs[name], acct.ledgers[name].base, oracles[name]
        # Closing one whole base unit frees px x (ratio + buffer) of requirement and costs px x fees.
        freed = px * (spec.margin_ratio_maintenance + MARGIN_BUFFER) // MARGIN_PRECISION
        cost = px * (LIQUIDATOR_FEE + IF_LIQUIDATION_FEE) // LIQUIDATION_FEE_PRECISION
        per_unit = max(1, freed - cost)
        q = -(-shortage * spec.base_precision // per_unit)
        q = min(abs(base), -(-q // spec.step_size) * spec.step_size)
        side = "ask" if base > 0 else "bid"
        fee_px = px * LIQUIDATOR_FEE // LIQUIDATION_FEE_PRECISION
        price = px - fee_px if base > 0 else px + fee_px
        if_fee = quote_value(q, px, spec.base_precision) * IF_LIQUIDATION_FEE // LIQUIDATION_FEE_PRECISION
        acct.fill(name, side, price, q, False, ex.now_ms, 0, 0, fee=if_fee)
    return True


def _requirement_with_buffer(ex: Exchange, oracles: dict[str, int]) -> int:
    acct = ex.account
    buffer = sum(abs(quote_value(led.base, oracles[n], led.base_precision)) * MARGIN_BUFFER // MARGIN_PRECISION
                 for n, led in acct.ledgers.items() if acct.specs[n].kind == "perp")
    return acct.requirement(oracles, maintenance=True) + buffer
