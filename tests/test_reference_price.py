"""The independent price check: pythclient's reading of real mainnet Pyth accounts agrees with
driftpy's to the unit, and refuses an aggregate Pyth itself would call stale."""
from __future__ import annotations

import base64
import json
import struct

import pytest
from driftpy.accounts.oracle import decode_pyth_price_info
from driftpy.types import OracleSource
from solders.pubkey import Pubkey

from keeper.localnet import oracle
from keeper.venues.drift.reference import parse, pyth_v2_factor

AGG_PUB_SLOT = 208 + 24  # aggregate price info: price, conf, status, corporate action, pub_slot


def pyth_dumps(shared_data):
    dumps = [json.loads(line) for line in open(shared_data / "drift_account_dumps.jsonl")]
    return [(d["pubkey"], base64.b64decode(d["data_base64"])) for d in dumps if d["account_type"] == "pyth_legacy_price_account"]


def test_matches_driftpy_on_real_pyth_accounts(shared_data):
    dumps = pyth_dumps(shared_data)
    assert len(dumps) == 3  # the 1MBONK oracle, PROVENANCE.md
    for key, data in dumps:
        key = Pubkey.from_string(key) if key else Pubkey.default()
        pub_slot = struct.unpack_from("<Q", data, AGG_PUB_SLOT)[0]
        driftpy_price = decode_pyth_price_info(data, OracleSource.Pyth1M()).price
        assert parse(key, data, pub_slot, pyth_v2_factor(OracleSource.Pyth1M())) == driftpy_price
        assert isinstance(driftpy_price, int) and driftpy_price > 0


def test_stale_aggregate_gives_no_reference(shared_data):
    key, data = pyth_dumps(shared_data)[0]
    pub_slot = struct.unpack_from("<Q", data, AGG_PUB_SLOT)[0]
    assert parse(Pubkey.default(), data, pub_slot + 25, 1_000_000) is not None  # pythclient's default max latency
    assert parse(Pubkey.default(), data, pub_slot + 26, 1_000_000) is None


@pytest.mark.parametrize("data", [b"", b"\0" * 3312, oracle.encode(100_000_000, 10_000, 7, 0)[:230]])
def test_not_a_price_account_gives_no_reference(data):
    assert parse(Pubkey.default(), data, 7) is None


def test_only_pyth_v2_sources_have_a_reference():
    assert pyth_v2_factor(OracleSource.Pyth()) == 1
    assert pyth_v2_factor(OracleSource.Pyth1K()) == 1_000
    assert pyth_v2_factor(OracleSource.PythPull()) is None
    assert pyth_v2_factor(OracleSource.Switchboard()) is None


def test_localnet_oracle_accounts_read_back_exactly():
    """keeper localnet writes these accounts; the reference reads them as Pyth would."""
    data = oracle.encode(84_123_456, 21_000, 1_000, 1_700_000_000)
    assert parse(Pubkey.default(), data, 1_000) == 84_123_456
