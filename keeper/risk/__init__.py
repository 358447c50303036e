"""Step 4 of the tick: the risk gate (gate.py), its limits (config.py, risk.schema.json), the
data guards (guards.py), position and exposure limits (limits.py), drawdown breakers and the
kill switch (breakers.py), when to settle PnL (settle.py)."""
from keeper.risk.config import AccountLimits, MarketLimits, RiskConfig, as_recorded, from_dict, load, read, recorded
from keeper.risk.gate import ACTIVE, HALTED, REDUCING, RiskGate

__all__ = ["ACTIVE", "HALTED", "REDUCING", "AccountLimits", "MarketLimits", "RiskConfig", "RiskGate", "as_recorded",
           "from_dict", "load", "read", "recorded"]
