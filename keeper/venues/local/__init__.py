"""The embedded local market: synthetic flow fed to the sim exchange (keeper/venues/sim/), no network.

SOL-PERP, BTC-PERP, ETH-PERP and SOL spot, with real market rules and book shapes derived
from ../shared/data/real by make_specs.py.
"""
from keeper.venues.local.flow import DEFAULT_TOXICITY, check_toxicity
from keeper.venues.local.oracle import load_price_path
from keeper.venues.local.specs import spec, specs
from keeper.venues.local.venue import LocalVenue
from keeper.venues.sim import AUTHORITY

__all__ = ["AUTHORITY", "DEFAULT_TOXICITY", "LocalVenue", "check_toxicity", "load_price_path", "spec", "specs"]
