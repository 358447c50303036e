"""The live Drift venue: on-chain accounts in, Drift's own order book (via the Node DLOB helper) out."""

# `--rpc` without `--network`: the deployment is whatever the endpoints serve. Here, not in
# markets.py, so the command line can name it without importing driftpy.
CUSTOM = "custom"
