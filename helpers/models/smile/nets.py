"""The SMiLE converter's networks and losses (notebook 03): ACGAN, Wasserstein ACGAN and the encoder E.

- ACGAN: Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs"
  (section 3): G(z, c) gets the class; D returns a real/fake logit AND class logits, and both
  networks are also scored on the class log-likelihood L_C.
- Wasserstein ACGAN: the same with a WGAN critic score instead of the real/fake logit: weight
  clipping + RMSProp (Arjovsky et al. 2017, algorithm 1) or the gradient penalty (Gulrajani et
  al. 2017) as the modern option.
- Feature matching (Salimans et al. 2016, section 3.1): G also matches the batch mean of D's
  last conv features on real and fake images, in L1 or L2.
- Encoder E: image -> (z, class logit), trained against a frozen G (.train).
All three are built from the DCGAN blocks (helpers.gan.blocks).

Shapes: images (B, C, H, W) in [-1, 1]; z (B, z_dim); classes c (B, A) in [0, 1] for A
attributes (A = 1: Smiling). Values outside [0, 1] extrapolate the class (the smile slider).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.global_batch import batch_mean, batch_var
from ...gan import INITS, Projection, doubling, down_stack, num_stages, up_stack


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
        widths = doubling(conv_dim, num_stages(img_size))[::-1]  # e.g. [256, 128, 64] at 32 px
        self.stem = Projection(z_dim + 2 * n_classes, widths[0], 4)
        self.features = up_stack(widths, channels)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Return images (B, C, img_size, img_size) in [-1, 1]; z: (B, z_dim), c: (B, A) or (B,)."""
        return self.from_map(self.first_map(z, c))

    def _code(self, c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        code = class_code(c).to(like.dtype)  # (B, 2A)
        if code.shape[1] != 2 * self.n_classes:
            raise ValueError(f"c has {code.shape[1] // 2} columns, this generator takes {self.n_classes}")
        return code

    def first_map(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Return the first layer's pre-activations (B, M), M = top channels * 4 * 4: the linear
        projection of cat(z, class_code(c)), before its batch norm and ReLU."""
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z has {z.shape[-1]} dims, this generator takes z_dim={self.z_dim}")
        return self.stem.pre(torch.cat([z, self._code(c, z)], 1))

    def from_map(self, m: torch.Tensor) -> torch.Tensor:
        """Return the images (B, C, img_size, img_size) in [-1, 1] drawn from first maps m (B, M)."""
        return self.features(self.stem.post(m))

    def class_shift(self, c: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return first_map(z, target) - first_map(z, c) (B, M), the same for every z.

        The class enters G only through the first (linear, bias-free) layer, so switching it adds
        this shift to the first map: a map inverted for a photo can take the same switch.
        """
        dcode = self._code(target, self.stem.fc.weight) - self._code(c, self.stem.fc.weight)  # (B, 2A)
        return self.stem.pre(torch.cat([dcode.new_zeros(len(dcode), self.z_dim), dcode], 1))


class TwoHeads(nn.Module):
    """The DCGAN trunk with two linear heads on its last 4x4 map: x -> (head_a (B, a), head_b (B, b))."""

    def __init__(self, a: int, b: int, conv_dim: int = 32, img_size: int = 32, channels: int = 3,
                 norm: str = "batch"):
        super().__init__()
        widths = doubling(conv_dim, num_stages(img_size))
        self.features = down_stack(channels, widths, norm)
        self.top_channels = widths[-1]
        self.fc = nn.Linear(widths[-1] * 16, a)
        self.cls = nn.Linear(widths[-1] * 16, b)

    def forward(self, x: torch.Tensor, with_features: bool = False):
        f = self.features(x).flatten(1)  # (B, top_channels * 16)
        a, b = self.fc(f), self.cls(f)
        return (a, b, f) if with_features else (a, b)


class ACDiscriminator(TwoHeads):
    """D(x) -> (real/fake logit (B, 1), class logits (B, A)[, features (B, F)]).

    No sigmoid / softmax: the losses take logits. `features` (with_features=True) are the flattened
    last map, the intermediate layer feature matching uses. norm='layer' or 'none' for a
    Wasserstein critic with the gradient penalty.
    """

    def __init__(self, conv_dim: int = 32, n_classes: int = 1, img_size: int = 32, channels: int = 3,
                 norm: str = "batch"):
        super().__init__(1, n_classes, conv_dim, img_size, channels, norm)
        self.n_classes = n_classes


class Critic(nn.Module):
    """The real/fake score alone of an ACDiscriminator: what the gradient penalty differentiates."""

    def __init__(self, D: ACDiscriminator):
        super().__init__()
        self.D = D

    def forward(self, x):
        return self.D(x)[0]


class Encoder(TwoHeads):
    """E(x) -> (z_hat (B, z_dim), class logits (B, A)): the DCGAN trunk with two linear heads."""

    def __init__(self, z_dim: int = 64, n_classes: int = 1, conv_dim: int = 32, img_size: int = 32,
                 channels: int = 3):
        super().__init__(z_dim, n_classes, conv_dim, img_size, channels, "batch")
        self.z_dim = z_dim


def build_gan(z_dim: int, n_classes: int, g_conv_dim: int, d_conv_dim: int, img_size: int = 32,
              channels: int = 3, d_norm: str = "batch", init: str = "normal") -> dict:
    """Return {'D', 'G'} freshly initialised (DCGAN's N(0, 0.02) by default)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {sorted(INITS)}")
    D = ACDiscriminator(d_conv_dim, n_classes, img_size=img_size, channels=channels, norm=d_norm)
    G = CondGenerator(z_dim, n_classes, g_conv_dim, img_size=img_size, channels=channels)
    return {"D": D.apply(INITS[init]), "G": G.apply(INITS[init])}


# ------------------------------------------------------------------------------------- losses
def class_loss(logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Return the scalar class negative log-likelihood -L_C: BCE on logits per attribute.

    logits: (B, A) raw (no sigmoid/softmax first); c: (B, A) targets in [0, 1]. For one binary
    attribute this is exactly the 2-class cross-entropy of Odena et al. 2017, eq. 2.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), c.float().reshape(logits.shape))


def feature_matching(f_real: torch.Tensor, f_fake: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Return the distance between batch-mean features of real and fake images (Salimans et al. 3.1).

    f_real, f_fake: (B, F) from ACDiscriminator(..., with_features=True); the real side is
    detached (only G learns from it). kind: 'l2' (mean squared) or 'l1' (mean absolute).
    """
    # batch_mean: under torchrun, the global batch's mean (as one process with the whole batch)
    return image_loss(batch_mean(f_fake.float()), batch_mean(f_real.detach().float()), kind)


def image_loss(x: torch.Tensor, y: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Return the scalar mean pixel (or feature) loss between two batches: 'l2' (MSE) or 'l1' (MAE)."""
    if kind == "l2":
        return F.mse_loss(x.float(), y.float())
    if kind == "l1":
        return F.l1_loss(x.float(), y.float())
    raise ValueError(f"loss kind={kind!r}: use 'l1' or 'l2'")


def prior_penalty(z: torch.Tensor) -> torch.Tensor:
    """Return how far a batch of codes is from N(0, I) in its first two moments (>= 0).

    z: (B, z_dim) encoder outputs. mean(mu^2) + mean((var - 1)^2) over dimensions: it keeps E's
    codes where G was trained, so flipping the class of a code still gives a face G knows.
    """
    z = z.float()  # batch_mean / batch_var: the global batch's moments under torchrun
    return batch_mean(z).pow(2).mean() + (batch_var(z) - 1).pow(2).mean()


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
    import bisect

    ends: list[int] = []

    def critic_steps(k: int) -> int:
        return warmup_critic if (k < warmup_g_steps or (warmup_every and k % warmup_every == 0)) else n_critic

    def is_g_step(step: int) -> bool:
        while not ends or ends[-1] < step:
            ends.append((ends[-1] if ends else -1) + critic_steps(len(ends)))
        return ends[bisect.bisect_left(ends, step)] == step

    return is_g_step
