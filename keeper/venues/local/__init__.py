"""The embedded local market: an in-process simulated Drift v2 exchange (no network).

SOL-PERP, BTC-PERP, ETH-PERP and SOL spot, with real market rules and book shapes derived
from ../shared/data/real by make_specs.py.
"""
from keeper.venues.local.exchange import AUTHORITY
from keeper.venues.local.oracle import load_price_path
from keeper.venues.local.specs import spec, specs
from keeper.venues.local.venue import LocalVenue

__all__ = ["AUTHORITY", "LocalVenue", "load_price_path", "spec", "specs"]
