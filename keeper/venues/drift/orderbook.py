"""The User accounts that make up the DLOB, kept in the Node helper.

They are fetched with driftpy's own filters (User accounts with open orders) through
getProgramAccounts, every `refresh_s`; only accounts whose bytes changed are sent to the
helper, and vanished ones are removed. Our own User is sent every tick, so the book we quote
against always holds our latest orders.
"""
from __future__ import annotations

import hashlib
import logging
import time

from driftpy.constants.config import DRIFT_PROGRAM_ID
from driftpy.memcmp import get_user_filter, get_user_with_order_filter
from solana.rpc.async_api import AsyncClient

from keeper.venues.drift.dlob import DlobHelper

log = logging.getLogger(__name__)


class BookUsers:
    def __init__(self, connection: AsyncClient, helper: DlobHelper, refresh_s: float = 5.0):
        self.connection, self.helper, self.refresh_s = connection, helper, refresh_s
        self._digests: dict[str, bytes] = {}
        self._loaded_at = float("-inf")

    async def refresh(self, own: dict[str, bytes]) -> None:
        """Bring the helper up to date: all book users when due, our own user always."""
        accounts: dict[str, bytes] = {}
        if time.monotonic() - self._loaded_at >= self.refresh_s:
            reply = await self.connection.get_program_accounts(
                DRIFT_PROGRAM_ID, encoding="base64", filters=[get_user_filter(), get_user_with_order_filter()])
            accounts = {str(a.pubkey): bytes(a.account.data) for a in reply.value}
            self._loaded_at = time.monotonic()
            gone = [k for k in self._digests if k not in accounts and k not in own]
            if gone:
                await self.helper.remove(gone)
                for key in gone:
                    self._digests.pop(key, None)
        accounts.update(own)
        changed = {}
        for key, data in accounts.items():
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if self._digests.get(key) != digest:
                changed[key] = data
                self._digests[key] = digest
        if changed:
            rejected = await self.helper.upsert(changed)
            for key, why in rejected.items():
                log.warning("book user %s skipped: %s", key, why)
                self._digests.pop(key, None)
