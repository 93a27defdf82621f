"""GAN losses on logits / critic scores: the standard (non-saturating) BCE, WGAN-GP and hinge.

Every loss returns a scalar in fp32: logits usually come out of bf16 autocast, where a log-sigmoid
loses too much precision. Logits are (B, 1) or (B,).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- Standard GAN losses (Goodfellow et al. 2014), with the Udacity course's signatures. ---

def real_loss(D_out: torch.Tensor, smooth: bool | float = False) -> torch.Tensor:
    """Return the scalar mean BCE of logits `D_out` against "real" labels.

    smooth: False -> labels 1; True -> 0.9 (one-sided label smoothing, Salimans et al. 2016,
    section 3.4); a float -> that label.
    """
    target = 0.9 if smooth is True else 1.0 if smooth is False else float(smooth)
    logits = D_out.float().reshape(-1)  # (B,)
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def fake_loss(D_out: torch.Tensor) -> torch.Tensor:
    """Return the scalar mean BCE of logits `D_out` against "fake" labels (0)."""
    logits = D_out.float().reshape(-1)  # (B,)
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


# --- Wasserstein losses with gradient penalty: Gulrajani et al. 2017, algorithm 1. ---

def wgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar critic loss E[D(fake)] - E[D(real)] (minimised; add the penalty yourself)."""
    return d_fake.float().mean() - d_real.float().mean()


def wgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar generator loss -E[D(fake)]."""
    return -d_fake.float().mean()


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar penalty E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates x_hat.

    real, fake: (B, C, H, W) (any shape with batch first), same shape. x_hat = a*real + (1-a)*fake
    with one a ~ U(0, 1) per sample. The graph is kept (create_graph=True) so the penalty trains
    D; multiply by lambda (10 in the paper) yourself. Gulrajani et al. 2017, section 4 and
    algorithm 1. The critic must not use batch norm: it couples the samples, so the per-sample
    gradient is no longer the thing being penalised (use layer norm or none).
    """
    B = real.shape[0]
    alpha = torch.rand((B,) + (1,) * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
    # Detached: the penalty must train D only, never pull G (or the data) through x_hat.
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
    scores = D(x_hat).float()  # (B, 1)
    (grads,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (B, C, H, W)
    # reshape, not view: a channels_last gradient is not viewable as (B, -1).
    norms = grads.float().reshape(B, -1).norm(2, dim=1)  # (B,)
    return ((norms - 1) ** 2).mean()


# --- Hinge losses: Lim & Ye 2017, Miyato et al. 2018 (SN-GAN). ---

def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Return the scalar E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1 - d_real.float()).mean() + F.relu(1 + d_fake.float()).mean()


LOSSES = ("bce", "wgan-gp", "hinge")


def d_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor, smooth: bool | float = False) -> torch.Tensor:
    """Return D's loss of one kind ('bce' | 'wgan-gp' | 'hinge'; the gradient penalty is added apart)."""
    if kind == "bce":
        return real_loss(d_real, smooth) + fake_loss(d_fake)
    if kind == "wgan-gp":
        return wgan_d_loss(d_real, d_fake)
    if kind == "hinge":
        return hinge_d_loss(d_real, d_fake)
    raise ValueError(f"loss={kind!r}: use one of {LOSSES}")


def g_loss(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    """Return G's loss of one kind ('bce' | 'wgan-gp' | 'hinge')."""
    if kind == "bce":
        return real_loss(d_fake)
    if kind in ("wgan-gp", "hinge"):
        return wgan_g_loss(d_fake)
    raise ValueError(f"loss={kind!r}: use one of {LOSSES}")
