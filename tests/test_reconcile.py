from keeper.model import MAX_OPEN_ORDERS, Intent, OpenOrder, Placement, replace
from keeper.reconcile import reconcile


def order(order_id, uid, side="bid", price=84_000_000, size=10**9, filled=0, offset=None, market="SOL-PERP"):
    return OpenOrder(order_id, uid, market, side, 0 if offset is not None else price, size, filled, offset)


def test_nothing_open_places_everything_with_lowest_free_ids():
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000), Intent("SOL-PERP", "ask", 10**9, price=86_000_000)]
    plan = reconcile(intents, ())
    assert plan.cancels == ()
    assert plan.places == (Placement(intents[0], 1), Placement(intents[1], 2))


def test_exact_match_is_left_alone():
    resting = (order(7, 1), order(8, 2, side="ask", price=86_000_000))
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000), Intent("SOL-PERP", "ask", 10**9, price=86_000_000)]
    plan = reconcile(intents, resting)
    assert not plan
    assert plan.cancels == () and plan.places == ()


def test_only_the_changed_order_is_replaced():
    resting = (order(7, 1), order(8, 2, side="ask", price=86_000_000))
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000), Intent("SOL-PERP", "ask", 10**9, price=86_100_000)]
    plan = reconcile(intents, resting)
    assert [o.order_id for o in plan.cancels] == [8]
    # the id being cancelled is not reused in the same plan
    assert [(p.intent.price, p.user_order_id) for p in plan.places] == [(86_100_000, 3)]


def test_partially_filled_order_is_replaced_by_the_full_size():
    resting = (order(7, 1, filled=4 * 10**8),)
    plan = reconcile([Intent("SOL-PERP", "bid", 10**9, price=84_000_000)], resting)
    assert [o.order_id for o in plan.cancels] == [7]
    assert plan.places[0].intent.size == 10**9


def test_floating_orders_match_on_offset():
    resting = (order(3, 5, offset=-20_000),)
    assert not reconcile([Intent("SOL-PERP", "bid", 10**9, oracle_offset=-20_000)], resting)
    plan = reconcile([Intent("SOL-PERP", "bid", 10**9, oracle_offset=-30_000)], resting)
    assert len(plan.cancels) == 1 and len(plan.places) == 1


def test_orders_without_user_order_id_are_never_touched():
    resting = (order(1, 0), order(2, 0, side="ask"))
    plan = reconcile([], resting)
    assert plan.cancels == ()


def test_duplicate_intents_need_duplicate_orders():
    resting = (order(1, 1),)
    intent = Intent("SOL-PERP", "bid", 10**9, price=84_000_000)
    plan = reconcile([intent, intent], resting)
    assert plan.cancels == () and len(plan.places) == 1


def test_unwanted_keeper_orders_are_cancelled():
    resting = (order(1, 1), order(2, 2, market="BTC-PERP"))
    plan = reconcile([], resting)
    assert [o.order_id for o in plan.cancels] == [1, 2]


def test_order_slots_are_capped_at_32_and_the_excess_reported():
    resting = tuple(order(i, 0, price=80_000_000 + i) for i in range(1, 31))  # 30 slots used by non-keeper orders
    intents = [Intent("SOL-PERP", "ask", 10**9, price=90_000_000 + i * 100) for i in range(5)]
    plan = reconcile(intents, resting)
    assert len(plan.places) == MAX_OPEN_ORDERS - 30
    assert sum("no free order slot" in note for note in plan.dropped) == 3


def test_user_order_ids_skip_those_in_use():
    resting = (order(1, 1), order(2, 3))
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000), Intent("SOL-PERP", "ask", 10**9, price=86_000_000),
               Intent("SOL-PERP", "ask", 10**9, price=87_000_000)]
    plan = reconcile(intents, resting)
    assert [o.order_id for o in plan.cancels] == [2]
    assert [p.user_order_id for p in plan.places] == [2, 4]


# -- the dead-man's switch: quote TTL ------------------------------------------------------------

NOW = 1_700_000_000


def _expiring(order_id, uid, max_ts, **kw):
    
    return replace(order(order_id, uid, **kw), max_ts=max_ts)


def test_every_placement_expires_after_the_ttl():
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000), Intent("SOL-PERP", "ask", 10**9, price=86_000_000,
                                                                          expiry_s=7)]
    plan = reconcile(intents, (), now_s=NOW, quote_ttl_s=30)
    assert [p.intent.expiry_s for p in plan.places] == [30, 7]  # a strategy may ask for less, never more
    assert [p.intent.expiry_s for p in reconcile(intents, ()).places] == [0, 7]  # no TTL: as the strategy said


def test_a_quote_is_kept_until_a_third_of_its_ttl_is_left_then_replaced():
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000)]
    fresh = (_expiring(7, 1, NOW + 25),)
    assert not reconcile(intents, fresh, now_s=NOW, quote_ttl_s=30)
    assert not reconcile(intents, (_expiring(7, 1, NOW + 10),), now_s=NOW, quote_ttl_s=30)  # 10 s left: still kept
    lapsing = (_expiring(7, 1, NOW + 9),)
    plan = reconcile(intents, lapsing, now_s=NOW, quote_ttl_s=30)
    assert [o.order_id for o in plan.cancels] == [7]
    assert [(p.user_order_id, p.intent.expiry_s) for p in plan.places] == [(2, 30)]


def test_with_a_ttl_an_order_without_expiry_is_replaced_by_one_with():
    intents = [Intent("SOL-PERP", "bid", 10**9, price=84_000_000)]
    forever = (order(7, 1),)  # max_ts 0: left by a run before the switch
    assert not reconcile(intents, forever, now_s=NOW)
    plan = reconcile(intents, forever, now_s=NOW, quote_ttl_s=30)
    assert [o.order_id for o in plan.cancels] == [7] and plan.places[0].intent.expiry_s == 30
