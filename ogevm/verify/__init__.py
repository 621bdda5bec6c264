"""Verification of inference results: VANILLA node signatures (TEE and ZKML build on them)."""
