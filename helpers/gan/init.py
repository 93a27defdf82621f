"""Weight initialisation (DCGAN paper, section 4: N(0, 0.02); Xavier as an option)."""
from __future__ import annotations

import torch.nn as nn

_CONV_LINEAR = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)


def weights_init_normal(m: nn.Module) -> None:
    """Apply with `net.apply(weights_init_normal)`: conv/linear weights N(0, 0.02), biases 0,
    batch-norm weights N(1, 0.02) and biases 0."""
    if isinstance(m, _CONV_LINEAR):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def weights_init_xavier(m: nn.Module) -> None:
    """Apply with `net.apply(weights_init_xavier)`: Xavier-uniform conv/linear weights, zero biases;
    batch norm as in `weights_init_normal`."""
    if isinstance(m, _CONV_LINEAR):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, _NORMS):
        weights_init_normal(m)


INITS = {"normal": weights_init_normal, "xavier": weights_init_xavier}
