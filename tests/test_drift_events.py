"""Drift's fill events decoded from a real transaction of the program (in a plain LiteSVM), and
checked against the accounts that transaction changed."""
from __future__ import annotations

from solders.keypair import Keypair

from keeper.localnet import flow, instructions
from keeper.model import FEE_DENOMINATOR, MarketSpec
from keeper.venues.drift.events import events, is_fill, market_of, own_fill, trade_of
from keeper.venues.local.specs import spec
from tests.test_localnet_genesis import PRICES, SOL, advance, net, new_user, user_of  # noqa: F401  (net: fixture)


def _take_a_resting_ask(svm, ex) -> tuple[Keypair, Keypair, int, int, list[str]]:
    maker, taker = new_user(svm, ex, 31), new_user(svm, ex, 32)
    ask = 85_017_500  # on the tick, 1 bp over the oracle: inside the AMM's ask, so matched first
    place = flow.order_params(0, "ask", 2 * SOL, price=ask)
    instructions.send(svm, maker, [instructions.place_perp_order_ix(ex, maker.pubkey(), place)])
    advance(svm, ex)
    take = flow.order_params(0, "bid", SOL, price=PRICES["SOL"] + 100_000, post_only=False, ioc=True)
    result = instructions.send(svm, taker, [instructions.place_and_take_ix(ex, taker.pubkey(), take,
                                                                           [(ex.user(maker.pubkey()), maker.pubkey())])])
    return maker, taker, ask, SOL, list(result.logs())


def test_a_fill_event_says_what_the_accounts_show(net):  # noqa: F811  (the fixture)
    svm, ex = net
    maker, taker, ask, size, logs = _take_a_resting_ask(svm, ex)
    decoded = events().decode(logs)
    fills = [e.data for e in decoded if e.name == "OrderActionRecord" and is_fill(e.data)]
    assert len(fills) == 1, [e.name for e in decoded]
    record = fills[0]
    assert market_of(record) == ("perp", 0)
    s: MarketSpec = spec("SOL-PERP")
    trade = trade_of(record, s, slot=svm.get_clock().slot)
    maker_user, taker_user = str(ex.user(maker.pubkey())), str(ex.user(taker.pubkey()))
    assert (trade.maker, trade.taker, trade.taker_side) == (maker_user, taker_user, "bid")
    assert (trade.price, trade.size, trade.quote) == (ask, size, ask * size // 10**9)
    assert trade.ts == svm.get_clock().unix_timestamp * 1000

    # the accounts agree: the maker's order and position moved by exactly this fill, fee included
    maker_account = user_of(svm, ex, maker)
    (order,) = [o for o in maker_account.orders if o.base_asset_amount]
    assert (record.maker_order_id, order.base_asset_amount_filled, order.quote_asset_amount_filled) == (
        order.order_id, size, trade.quote)
    perp = next(p for p in maker_account.perp_positions if p.market_index == 0)
    assert perp.base_asset_amount == -size
    assert perp.quote_asset_amount == trade.quote - trade.maker_fee  # a short's proceeds plus its rebate
    # the program's rebate: the market's rebate share of the quote, rounded down
    assert trade.maker_fee == -(trade.quote * s.maker_rebate // FEE_DENOMINATOR) < 0
    taker_perp = next(p for p in user_of(svm, ex, taker).perp_positions if p.market_index == 0)
    assert taker_perp.quote_asset_amount == -trade.quote - trade.taker_fee

    mine = own_fill(trade, record, "SOL-PERP", maker_user, {order.order_id: 9})
    assert (mine.side, mine.price, mine.size, mine.fee, mine.maker, mine.order_id, mine.user_order_id) == (
        "ask", ask, size, trade.maker_fee, True, order.order_id, 9)
    theirs = own_fill(trade, record, "SOL-PERP", taker_user, {})
    assert (theirs.side, theirs.maker, theirs.fee) == ("bid", False, trade.taker_fee)
    assert own_fill(trade, record, "SOL-PERP", str(Keypair().pubkey()), {}) is None


def test_records_shorter_than_the_idl_are_read_by_its_prefix(net):  # noqa: F811
    """This program build emits the 28 fields it knew; driftpy's IDL lists more, appended later."""
    svm, ex = net
    *_, logs = _take_a_resting_ask(svm, ex)
    names = [e.name for e in events().decode(logs)]
    assert "OrderRecord" in names and names.count("OrderActionRecord") >= 2  # the taker's place, then the fill
    layouts = events()._layouts["OrderActionRecord"]
    assert len(layouts) > 28 and events()._fits["OrderActionRecord"] == len(layouts) - 28


def test_bytes_no_prefix_reads_are_skipped_with_a_warning(caplog):
    import hashlib

    junk = hashlib.sha256(b"event:OrderActionRecord").digest()[:8] + b"\x01\x02\x03"
    assert events().parse(junk) is None
    assert "matches no prefix of driftpy's IDL" in caplog.text
    assert events().parse(b"\x00" * 16) is None  # an event we don't read
