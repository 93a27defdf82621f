"""Judging generated faces: the oracle, metrics, FID/KID and face judges."""
