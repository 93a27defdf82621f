"""The SMiLE converter's networks and losses: ACGAN, Wasserstein ACGAN and the image encoder E.

Used by notebooks/03_smile_converter.ipynb (training in helpers.smile_train, sliders in
helpers.smile_widgets).

- ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs"
  (section 3): G(z, c) gets the class; D returns a real/fake logit AND class logits, and both
  networks are also scored on the class log-likelihood L_C.
- Wasserstein ACGAN: the same with a WGAN critic score instead of the real/fake logit: weight
  clipping + RMSProp (Arjovsky et al. 2017, algorithm 1) or the gradient penalty (Gulrajani et
  al. 2017) as the modern option.
- Feature matching (Salimans et al. 2016, section 3.1): G also matches the batch mean of D's
  last conv features on real and fake images, in L1 or L2.
- Encoder E: image -> (z, class logit), trained against a frozen G (helpers.smile_train).

Shapes: images (B, C, H, W) in [-1, 1]; z (B, z_dim); classes c (B, A) in [0, 1] for A
attributes (A = 1: Smiling). Values outside [0, 1] extrapolate the class (the smile slider).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dcgan import Discriminator, Generator
from .train import frozen
from .weights import INITS


def class_code(c: torch.Tensor) -> torch.Tensor:
    """Return the generator's class input cat(c, 1 - c): (B, 2A), a one-hot pair per attribute.

    c: (B, A) or (B,) floats; 0/1 gives the classic one-hot, 0.5 the middle, -0.5 or 1.5 an
    extrapolation (the smile-amount slider interpolates linearly in this code).
    """
    c = c.float().reshape(c.shape[0], -1)  # (B, A)
    return torch.cat([c, 1 - c], 1)  # (B, 2A)


class CondGenerator(nn.Module):
    """G(z, c): the DCGAN generator fed cat(z, class_code(c)) (Odena et al. 2017, section 3)."""

    def __init__(self, z_dim: int = 64, n_classes: int = 1, conv_dim: int = 64, img_size: int = 32,
                 channels: int = 3):
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.net = Generator(z_dim + 2 * n_classes, conv_dim, img_size=img_size, channels=channels)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Return images (B, C, img_size, img_size) in [-1, 1]; z: (B, z_dim), c: (B, A) or (B,)."""
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z has {z.shape[-1]} dims, this generator takes z_dim={self.z_dim}")
        code = class_code(c).to(z.dtype)  # (B, 2A)
        if code.shape[1] != 2 * self.n_classes:
            raise ValueError(f"c has {code.shape[1] // 2} columns, this generator takes {self.n_classes}")
        return self.net(torch.cat([z, code], 1))


class ACDiscriminator(Discriminator):
    """D(x) -> (real/fake logit (B, 1), class logits (B, A), features (B, F)).

    The DCGAN conv trunk; two linear heads on the last 4x4 map (no sigmoid/softmax: the losses
    take logits). `features` are that flattened map, the intermediate layer feature matching
    uses. norm='layer' or 'none' for a Wasserstein critic (see helpers.dcgan.gradient_penalty).
    """

    def __init__(self, conv_dim: int = 32, n_classes: int = 1, img_size: int = 32, channels: int = 3,
                 norm: str = "batch"):
        super().__init__(conv_dim, img_size=img_size, channels=channels, norm=norm)
        self.n_classes = n_classes
        self.cls = nn.Linear(self.top_channels * 16, n_classes)

    def forward(self, x: torch.Tensor, with_features: bool = False):
        f = self.features(x).flatten(1)  # (B, top_channels * 16)
        adv, cls = self.fc(f), self.cls(f)  # (B, 1), (B, A)
        return (adv, cls, f) if with_features else (adv, cls)


class Critic(nn.Module):
    """The real/fake score alone of an ACDiscriminator: what the gradient penalty differentiates."""

    def __init__(self, D: ACDiscriminator):
        super().__init__()
        self.D = D

    def forward(self, x):
        return self.D(x)[0]


class Encoder(Discriminator):
    """E(x) -> (z_hat (B, z_dim), class logits (B, A)): the DCGAN trunk with two linear heads."""

    def __init__(self, z_dim: int = 64, n_classes: int = 1, conv_dim: int = 32, img_size: int = 32,
                 channels: int = 3):
        super().__init__(conv_dim, img_size=img_size, channels=channels, norm="batch")
        self.z_dim = z_dim
        self.fc = nn.Linear(self.top_channels * 16, z_dim)
        self.cls = nn.Linear(self.top_channels * 16, n_classes)

    def forward(self, x: torch.Tensor):
        f = self.features(x).flatten(1)  # (B, top_channels * 16)
        return self.fc(f), self.cls(f)  # (B, z_dim), (B, A)


def build_gan(z_dim: int, n_classes: int, g_conv_dim: int, d_conv_dim: int, img_size: int = 32,
              channels: int = 3, d_norm: str = "batch", init: str = "normal"):
    """Return (D, G) freshly initialised (DCGAN's N(0, 0.02) by default)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {sorted(INITS)}")
    D = ACDiscriminator(d_conv_dim, n_classes, img_size=img_size, channels=channels, norm=d_norm)
    G = CondGenerator(z_dim, n_classes, g_conv_dim, img_size=img_size, channels=channels)
    D.apply(INITS[init])
    G.apply(INITS[init])
    return D, G


# ------------------------------------------------------------------------------------- losses
def class_loss(logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Return the scalar class negative log-likelihood -L_C: BCE on logits per attribute.

    logits: (B, A) raw (no sigmoid/softmax first); c: (B, A) targets in [0, 1]. For one binary
    attribute this is exactly the 2-class cross-entropy of Odena et al. 2017, eq. 2.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), c.float().reshape(logits.shape))


def adv_loss(logits: torch.Tensor, real: bool, smooth: float = 1.0) -> torch.Tensor:
    """Return the scalar BCE of real/fake logits against 'real' (target `smooth`) or 'fake' (0)."""
    logits = logits.float().reshape(-1)  # (B,)
    target = torch.full_like(logits, smooth if real else 0.0)
    return F.binary_cross_entropy_with_logits(logits, target)


def feature_matching(f_real: torch.Tensor, f_fake: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Return the distance between batch-mean features of real and fake images (Salimans et al. 3.1).

    f_real, f_fake: (B, F) from ACDiscriminator(..., with_features=True); the real side is
    detached (only G learns from it). kind: 'l2' (mean squared) or 'l1' (mean absolute).
    """
    diff = f_real.detach().float().mean(0) - f_fake.float().mean(0)  # (F,)
    if kind == "l2":
        return diff.pow(2).mean()
    if kind == "l1":
        return diff.abs().mean()
    raise ValueError(f"feature matching kind={kind!r}: use 'l1' or 'l2'")


def image_loss(x: torch.Tensor, y: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Return the scalar pixel loss between two image batches: 'l2' (MSE) or 'l1' (MAE)."""
    if kind == "l2":
        return F.mse_loss(x.float(), y.float())
    if kind == "l1":
        return F.l1_loss(x.float(), y.float())
    raise ValueError(f"image loss kind={kind!r}: use 'l1' or 'l2'")


def prior_penalty(z: torch.Tensor) -> torch.Tensor:
    """Return how far a batch of codes is from N(0, I) in its first two moments (>= 0).

    z: (B, z_dim) encoder outputs. mean(mu^2) + mean((var - 1)^2) over dimensions: it keeps E's
    codes where G was trained, so flipping the class of a code still gives a face G knows.
    """
    z = z.float()
    return z.mean(0).pow(2).mean() + (z.var(0) - 1).pow(2).mean()


def clip_weights(D: ACDiscriminator, clip: float) -> None:
    """Clamp the critic's trunk and score head to [-clip, clip] (Arjovsky et al. 2017, algorithm 1).

    The class head is left free: it is not part of the critic's score, and clipping it to 0.01
    would keep its logits near 0 whatever the features say.
    """
    with torch.no_grad():
        for name, p in D.named_parameters():
            if not name.startswith("cls."):
                p.clamp_(-clip, clip)


def critic_schedule(n_critic: int, warmup_critic: int = 100, warmup_g_steps: int = 25, warmup_every: int = 500):
    """Return is_g_step(step) -> bool for 0-based batch counts: does batch `step` end a critic run?

    The critic takes `warmup_critic` steps before each of the first `warmup_g_steps` generator
    steps and before every `warmup_every`-th one, else `n_critic` (Arjovsky et al. 2017, the
    reference code). A pure function of the step, so a resumed run continues the same schedule.
    """
    ends: list[int] = []

    def critic_steps(k: int) -> int:
        return warmup_critic if (k < warmup_g_steps or (warmup_every and k % warmup_every == 0)) else n_critic

    def is_g_step(step: int) -> bool:
        while not ends or ends[-1] < step:
            ends.append((ends[-1] if ends else -1) + critic_steps(len(ends)))
        lo, hi = 0, len(ends)  # binary search: is `step` one of the run ends?
        while lo < hi:
            mid = (lo + hi) // 2
            if ends[mid] < step:
                lo = mid + 1
            else:
                hi = mid
        return ends[lo] == step

    return is_g_step


# ---------------------------------------------------------------------------------- inference
@torch.no_grad()
def generate(G, z: torch.Tensor, c: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Return G(z, c) in eval mode, batched, as float32 on the CPU: (N, C, H, W) in [-1, 1]."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    c = c.float().reshape(len(c), -1)
    out = torch.cat([G(z[i:i + batch_size].to(device), c[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(z), batch_size)])
    G.train(was_training)
    return out


@torch.no_grad()
def encode(E, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (z_hat (N, z_dim), P(class) (N, A)) from E in eval mode, float32 on the CPU."""
    was_training = E.training
    E.eval()
    device = next(E.parameters()).device
    zs, ps = [], []
    for i in range(0, len(x), batch_size):
        z, logit = E(x[i:i + batch_size].to(device).float())
        zs.append(z.float().cpu())
        ps.append(torch.sigmoid(logit.float()).cpu())
    E.train(was_training)
    return torch.cat(zs), torch.cat(ps)


def optimise_latent(G, x: torch.Tensor, c: torch.Tensor, z0: torch.Tensor, steps: int = 30, lr: float = 0.05,
                    prior: float = 1e-3, kind: str = "l2", batch_size: int = 500) -> torch.Tensor:
    """Return z (N, z_dim) after `steps` Adam steps on pixel_loss(G(z, c), x) + prior * ||z||^2 / z_dim.

    Starts from E's guess z0, so a few steps suffice (per-image refinement, as in Zhu et al. 2016,
    "Generative Visual Manipulation on the Natural Image Manifold", section 3.1). G stays frozen.
    x: (N, C, H, W) in [-1, 1]; c: (N, A) the class x has.
    """
    if steps <= 0:
        return z0.clone()
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    out = []
    try:
        with frozen(G):
            for i in range(0, len(x), batch_size):
                xb, cb = x[i:i + batch_size].to(device).float(), c[i:i + batch_size].to(device).float()
                z = z0[i:i + batch_size].to(device).float().clone().requires_grad_(True)
                opt = torch.optim.Adam([z], lr=lr)
                for _ in range(steps):
                    # Per-image sums (not batch means) so each z gets the same step whatever the batch size.
                    per = (G(z, cb).float() - xb).abs() if kind == "l1" else (G(z, cb).float() - xb).pow(2)
                    loss = per.flatten(1).mean(1).sum() + prior * z.pow(2).mean(1).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                out.append(z.detach().cpu())
    finally:
        G.train(was_training)
    return torch.cat(out)


def convert(G, E, x: torch.Tensor, c: torch.Tensor, target: torch.Tensor, latent_steps: int = 0,
            latent_lr: float = 0.05, latent_prior: float = 1e-3, kind: str = "l2") -> dict:
    """Return {'z', 'recon', 'converted'}: z = E(x) (refined), G(z, c) and G(z, target).

    x: (N, C, H, W) in [-1, 1]; c: (N, A) its class (labels, or E's read-out for an upload);
    target: (N, A) the class to render, e.g. 1 - c to flip the smile, or any value in between.
    """
    c, target = c.float().reshape(len(x), -1), target.float().reshape(len(x), -1)
    z0, _ = encode(E, x)
    z = optimise_latent(G, x, c, z0, latent_steps, latent_lr, latent_prior, kind)
    return {"z": z, "recon": generate(G, z, c), "converted": generate(G, z, target)}
