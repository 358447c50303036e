"""The live Drift venue: on-chain accounts in, Drift's own order book (via the Node DLOB helper) out."""
