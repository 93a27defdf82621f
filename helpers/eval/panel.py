"""The judges a notebook scores its model with, in one object: the attribute oracle trained on the
data in use, and the field's yardsticks that were not (FID / KID on Inception features, a face
detector, a face-identity embedding: helpers.eval.fid and helpers.eval.judges)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .metrics import fd_oracle, fd_reference


@dataclass
class Judges:
    """oracle: an AttributeOracle (features, predict, attr_names); report: its training report."""

    oracle: object
    report: dict = field(default_factory=dict)

    def generated(self, fake: torch.Tensor, real: torch.Tensor) -> dict:
        """Return the scores of generated faces against real ones (both (N, C, H, W) in [-1, 1]):
        {'fd_oracle'}."""
        return {"fd_oracle": fd_oracle(self.oracle, fake, real)}

    def reference(self, train, test, n: int, blur: int = 0) -> dict:
        """Return the yardsticks the scores are read against: real vs real (the floor), noise vs real."""
        return fd_reference(self.oracle, train, test, n=n, blur=blur)


def load_judges(train, valid, device, seconds: float = 60) -> Judges:
    """Return the Judges for a data set: the oracle trained on train (cached per data set)."""
    from .oracle import load_or_train_oracle

    oracle, report = load_or_train_oracle(train, valid, device=device, seconds=seconds)
    return Judges(oracle, report)
