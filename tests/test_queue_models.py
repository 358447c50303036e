"""Queue position, partial fills and latency of one resting order (keeper.venues.sim)."""
from __future__ import annotations

import pytest

from keeper.errors import UserError
from keeper.model import BASE_PRECISION, PRICE_PRECISION, Book, BookOrder, Level, Trade
from keeper.venues.sim.fills import RestingFill, check_latency_slots
from keeper.venues.sim.queue import DEFAULT_QUEUE_MODEL, QUEUE_MODELS, QueuePosition, make_queue_model

LOT = BASE_PRECISION // 10  # 0.1 SOL
TICK = PRICE_PRECISION // 100  # $0.01
BID = 100 * PRICE_PRECISION  # our bid, $100.00
ASK = BID + 10 * TICK


def book(bid_lots: int | None = 100, *, l3: tuple[BookOrder, ...] | None = None) -> Book:
    """Best bid one tick above ours, our level (when given), a deeper one; asks 10 ticks up."""
    bids = [Level(BID + TICK, 30 * LOT)]
    if bid_lots is not None:
        bids.append(Level(BID, bid_lots * LOT))
    bids.append(Level(BID - TICK, 80 * LOT))
    return Book(tuple(bids), (Level(ASK, 50 * LOT),), l3)


def sell(lots: int, price: int = BID) -> Trade:
    return Trade(price, lots * LOT, "ask")  # a seller took the bids


def resting(model: str = DEFAULT_QUEUE_MODEL, lots: int = 100, at: Book | None = None, latency: int = 1) -> RestingFill:
    return RestingFill(make_queue_model(model), "bid", BID, lots * LOT, 0, latency, at or book())


# the case --------------------------------------------------------------------------

def test_behind_100_a_trade_of_50_does_not_fill():
    order = resting()
    assert order.advance(1, book(50), [sell(50)]) == 0
    assert order.remaining == 100 * LOT and order.queue_ahead == 50 * LOT


def test_behind_100_a_trade_of_150_fills_50():
    order = resting()
    assert order.advance(1, book(100), [sell(150)]) == 50 * LOT
    assert order.remaining == 50 * LOT and order.queue_ahead == 0


def test_trades_at_our_price_add_up_across_snapshots():
    order = resting()
    assert order.advance(1, book(50), [sell(50)]) == 0
    assert order.advance(2, book(50), [sell(60), sell(40)]) == 50 * LOT


def test_a_partial_fill_never_exceeds_what_is_left_of_the_order():
    order = resting(lots=30)
    assert order.advance(1, book(100), [sell(150)]) == 30 * LOT
    assert order.remaining == 0
    assert order.advance(2, book(100), [sell(500)]) == 0


# what every model shares ----------------------------------------------------------------------

@pytest.mark.parametrize("model", sorted(QUEUE_MODELS))
def test_a_trade_through_our_price_fills_the_whole_order(model):
    order = resting(model)
    assert order.advance(1, book(100), [sell(1, BID - TICK)]) == 100 * LOT


@pytest.mark.parametrize("model", sorted(QUEUE_MODELS))
def test_a_book_that_crossed_our_price_fills_the_whole_order(model):
    order = resting(model)
    crossed = Book((Level(BID - 2 * TICK, 10 * LOT),), (Level(BID, 10 * LOT),))
    assert order.advance(1, crossed, []) == 100 * LOT


@pytest.mark.parametrize("model", sorted(QUEUE_MODELS))
def test_a_taker_on_our_side_never_touches_us(model):
    order = resting(model)
    assert order.advance(1, book(100), [Trade(BID, 500 * LOT, "bid"), Trade(BID - TICK, 500 * LOT, "bid")]) == 0


def test_trades_at_other_prices_leave_the_queue_alone():
    order = resting()
    assert order.advance(1, book(100), [sell(90, BID + TICK)]) == 0
    assert order.queue_ahead == 100 * LOT


# risk_averse: the level rules ----------------------------------------------------------------

def test_the_queue_shrinks_with_the_level_and_never_grows_back():
    order = resting()
    order.advance(1, book(60), [])
    assert order.queue_ahead == 60 * LOT
    order.advance(2, book(200), [])
    assert order.queue_ahead == 60 * LOT
    assert order.advance(3, book(200), [sell(70)]) == 10 * LOT


def test_a_level_emptied_inside_the_displayed_book_leaves_nobody_ahead():
    order = resting()
    order.advance(1, book(None), [])
    assert order.queue_ahead == 0
    assert order.advance(2, book(None), [sell(3)]) == 3 * LOT


def test_a_level_beyond_the_displayed_depth_keeps_the_estimate():
    order = resting()
    shallow = Book((Level(BID + TICK, 30 * LOT),), (Level(ASK, 50 * LOT),))  # the bids shown end above us
    order.advance(1, shallow, [])
    assert order.queue_ahead == 100 * LOT


def test_size_at_reads_zero_inside_the_book_and_unknown_beyond_it():
    shown = book(None)
    assert shown.size_at("bid", BID + TICK) == 30 * LOT
    assert shown.size_at("bid", BID) == 0
    assert shown.size_at("bid", BID - 5 * TICK) is None
    assert Book().size_at("bid", BID) is None
    assert Book(asks=(Level(ASK, 1), Level(ASK + 2 * TICK, 1))).size_at("ask", ASK + TICK) == 0


def test_an_archived_l3_seats_us_behind_the_orders_resting_there():
    l3 = (BookOrder("bid", BID, 40 * LOT, "alice", 1), BookOrder("bid", BID, 30 * LOT, "bob", 7),
          BookOrder("ask", BID, 99 * LOT, "carol", 2))
    order = resting(at=book(100, l3=l3))  # the L2 shows 100 at our price, the L3 orders there hold 70
    assert order.queue_ahead == 70 * LOT
    assert resting(at=book(100, l3=l3[2:])).queue_ahead == 0  # an L3 with nobody at our price: nobody ahead


# naive --------------------------------------------------------------------------------------

def test_naive_fills_on_any_trade_at_our_price_whatever_rests_there():
    order = resting("naive")
    assert order.queue_ahead == 0
    assert order.advance(1, book(100), [sell(1)]) == 1 * LOT
    assert order.advance(2, book(100), [sell(500)]) == 99 * LOT


# prob: expected cancels ahead, by hand (power 3) ------------------------------------------------

def prob_after(ahead: int, prev: int, new: int, traded: int = 0) -> int:
    model = make_queue_model("prob")
    q = model.new_order(ahead, None)
    if traded:
        model.trade(q, traded)
        assert model.is_filled(q) == 0
    model.depth(q, prev, new, None)
    return q.ahead


def test_prob_splits_cancels_by_the_cube_of_the_size_on_each_side():
    # 20 cancelled, 30 ahead, 70 behind: 20 * 30**3 // (30**3 + 70**3) = 540_000 // 370_000 = 1 ahead
    assert prob_after(30, 100, 80) == 29
    # 70 ahead, 30 behind: 20 * 343_000 // 370_000 = 18 ahead
    assert prob_after(70, 100, 80) == 52


def test_prob_cancels_beyond_what_is_behind_come_out_of_the_front():
    # 11 cancelled, 2 ahead, 10 behind: 11 * 8 // 1008 = 0 ahead, 11 behind of 10 there: 1 more ahead
    assert prob_after(2, 12, 1) == 1


def test_prob_does_not_count_trades_as_cancels():
    # 60 ahead, 10 traded at our price, level 100 -> 60: 30 cancelled, 50 ahead and 40 behind after the trade,
    # 30 * 125_000 // 189_000 = 19 ahead
    assert prob_after(60, 100, 60, traded=10) == 31
    assert prob_after(30, 100, 80, traded=20) == 10  # the trade explains the whole shrink


def test_prob_ignores_a_level_that_grew_and_is_deterministic():
    assert prob_after(30, 100, 120) == 30
    assert prob_after(30, 100, 120, traded=10) == 20
    assert {prob_after(45, 90, 50) for _ in range(5)} == {prob_after(45, 90, 50)}


def test_prob_through_the_driver_moves_us_up_by_the_expected_cancels_ahead():
    prob, averse = resting("prob", at=book(30)), resting("risk_averse", at=book(30))
    for order in (prob, averse):
        order.advance(1, book(100), [])  # 70 joined behind us
        order.advance(2, book(80), [])  # 20 cancelled: 20 * 30**3 / (30**3 + 70**3) of it ahead of us
    assert prob.queue_ahead == 30 * LOT - 20 * LOT * 27_000 // 370_000 == 2_854_054_055
    assert averse.queue_ahead == 30 * LOT
    assert prob.advance(3, book(80), [sell(30)]) == 145_945_945
    assert averse.advance(3, book(80), [sell(30)]) == 0


# l3_fifo ------------------------------------------------------------------------------------

def test_l3_fifo_counts_only_the_orders_that_were_ahead_of_us():
    alice, bob = BookOrder("bid", BID, 40 * LOT, "alice", 1), BookOrder("bid", BID, 60 * LOT, "bob", 2)
    order = resting("l3_fifo", at=book(100, l3=(alice, bob)))
    assert order.queue_ahead == 100 * LOT
    # alice cancels, bob is half filled elsewhere, dave joins behind us: the level grows to 110
    later = (BookOrder("bid", BID, 30 * LOT, "bob", 2), BookOrder("bid", BID, 80 * LOT, "dave", 3))
    order.advance(1, book(110, l3=later), [])
    assert order.queue_ahead == 30 * LOT
    assert order.advance(2, book(110, l3=later), [sell(45)]) == 15 * LOT


def test_l3_fifo_without_l3_acts_as_risk_averse():
    fifo, averse = resting("l3_fifo"), resting("risk_averse")
    for clock, (lots, trades) in enumerate([(60, []), (200, []), (200, [sell(70)])], start=1):
        assert fifo.advance(clock, book(lots), trades) == averse.advance(clock, book(lots), trades)
        assert fifo.queue_ahead == averse.queue_ahead


# latency ------------------------------------------------------------------------------------

def test_an_order_fills_only_from_flow_after_it_lands():
    order = RestingFill(make_queue_model("naive"), "bid", BID, LOT, 5, 2, book())
    assert order.active_from == 7
    assert order.advance(6, book(100), [sell(1, BID - TICK)]) == 0
    assert order.advance(7, book(100), [sell(1, BID - TICK)]) == LOT


def test_until_it_lands_everything_resting_at_our_price_is_ahead():
    order = resting(latency=2)
    order.advance(1, book(300), [sell(1000)])  # not landed: the trade is not ours, the level grew ahead of us
    assert order.queue_ahead == 300 * LOT and order.remaining == 100 * LOT
    assert order.advance(2, book(300), [sell(350)]) == 50 * LOT


def test_latency_zero_fills_from_the_next_flow():
    order = resting("naive", latency=0)
    assert order.advance(1, book(), [sell(2)]) == 2 * LOT


# bad input ------------------------------------------------------------------------------------

def test_an_unknown_fill_model_names_the_valid_choices():
    with pytest.raises(UserError) as caught:
        make_queue_model("fifo")
    message = str(caught.value)
    assert "'fifo'" in message and all(name in message for name in QUEUE_MODELS)
    assert "\n" not in message


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True])
def test_a_negative_or_odd_latency_names_the_valid_range(bad):
    with pytest.raises(UserError, match="0 or more"):
        check_latency_slots(bad)
    with pytest.raises(UserError, match="--latency-slots"):
        RestingFill(make_queue_model("naive"), "bid", BID, LOT, 0, bad, book())


def test_the_registry_holds_the_four_models_and_risk_averse_is_the_default():
    assert set(QUEUE_MODELS) == {"risk_averse", "prob", "l3_fifo", "naive"}
    assert DEFAULT_QUEUE_MODEL == "l3_fifo"  # and risk_averse where the archive has no L3
    assert all(make_queue_model(name).name == name for name in QUEUE_MODELS)
    assert isinstance(make_queue_model("prob").new_order(5, None), QueuePosition)
