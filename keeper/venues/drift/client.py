"""driftpy's DriftClient, with two things the keeper needs that driftpy lacks.

1. A spot market on OracleSource.QuoteAsset is worth exactly 1.0, as the program prices it.
   The program's own set-up gives the quote market (USDC) no oracle account at all
   (Pubkey.default()); driftpy's subscribers, polling and websocket alike, then register no
   oracle for it, and its margin maths dereferences the missing price (an AttributeError deep
   in DriftUser). Every driftpy path reads spot oracles through the client method below, so
   this one override serves both subscriptions.
2. `missing_data()`: before driftpy's maths runs, which market account or oracle it would need
   and does not have, by name, so a skipped tick says what is missing.
"""
from __future__ import annotations

from typing import Optional

from driftpy.constants.numeric_constants import PRICE_PRECISION
from driftpy.drift_client import DriftClient
from driftpy.types import OraclePriceData, is_variant

from keeper.venues.drift.accounts import market_name


def is_quote_asset(oracle_source) -> bool:
    return is_variant(oracle_source, "QuoteAsset")


def quote_asset_price(slot: int) -> OraclePriceData:
    """The program's price of a QuoteAsset market: 1.0, confidence 1, never stale."""
    return OraclePriceData(price=PRICE_PRECISION, slot=slot, confidence=1, twap=PRICE_PRECISION,
                           twap_confidence=0, has_sufficient_number_of_data_points=True)


class KeeperDriftClient(DriftClient):
    def __init__(self, *args, perp_market_indexes: list[int], spot_market_indexes: list[int], **kwargs):
        super().__init__(*args, perp_market_indexes=perp_market_indexes, spot_market_indexes=spot_market_indexes,
                         **kwargs)
        self.loaded_perps = tuple(perp_market_indexes)
        self.loaded_spots = tuple(spot_market_indexes)

    def get_oracle_price_data_for_spot_market(self, market_index: int) -> Optional[OraclePriceData]:
        found = self.account_subscriber.get_spot_market_and_slot(market_index) if self.account_subscriber else None
        if found is not None and found.data is not None and is_quote_asset(found.data.oracle_source):
            return quote_asset_price(found.slot)
        return super().get_oracle_price_data_for_spot_market(market_index)

    def missing_data(self) -> Optional[str]:
        """The first market account or oracle price driftpy's maths needs and has not loaded."""
        for kind, indexes, get_market, get_oracle in (
            ("perp", self.loaded_perps, self.get_perp_market_account, self.get_oracle_price_data_for_perp_market),
            ("spot", self.loaded_spots, self.get_spot_market_account, self.get_oracle_price_data_for_spot_market),
        ):
            for index in indexes:
                market = get_market(index)
                if market is None:
                    return f"{kind} market {index}: its account is not loaded"
                if get_oracle(index) is None:
                    oracle, source = (market.amm.oracle, market.amm.oracle_source) if kind == "perp" else (
                        market.oracle, market.oracle_source)
                    return (f"{kind} market {index} ({market_name(market)}): no price from its oracle {oracle} "
                            f"({type(source).__name__})")
        return None
