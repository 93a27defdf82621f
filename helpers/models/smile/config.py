"""The SMiLE converter's configuration (notebook 03): two conditional GANs and their encoders."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...core.config import choose, run_field


@dataclass
class GANConfig:
    """One conditional GAN (ACGAN or Wasserstein ACGAN); saved inside its checkpoint."""

    loss: str = "bce"  # 'bce' (ACGAN), 'wgan-clip' (WACGAN as in the original) or 'wgan-gp'
    attrs: tuple = ("Smiling",)  # the class attributes G is given
    img_size: int = 32  # 32 (demo) or 64 / 128 (CelebA on a GPU)
    z_dim: int = 64  # latent size (small: easier for the encoder to invert)
    g_conv_dim: int = 64  # G's last-hidden-layer channels
    d_conv_dim: int = 32  # D's first-layer channels
    batch_size: int = 64  # images per step
    lr: float = 2e-4  # Adam (bce, wgan-gp) or RMSProp (wgan-clip: 5e-5 in the original)
    betas: tuple = (0.5, 0.999)  # Adam betas ((0, 0.9) for wgan-gp, Gulrajani et al.)
    cls_weight: float = 1.0  # weight of the class log-likelihood L_C in both losses
    cls_fake_weight: float = 1.0  # D/critic also classifies fakes (Odena et al.: 1; 0 = real only)
    fm: str = "none"  # feature matching on D's last conv features: 'none', 'l1' or 'l2'
    fm_weight: float = 1.0  # weight of the feature-matching term in G's loss
    smooth: float = 1.0  # ACGAN: real target of D (0.9 = one-sided label smoothing)
    clip: float = 0.01  # wgan-clip: critic weights clamped to [-clip, clip]
    gp_weight: float = 10.0  # wgan-gp: penalty weight lambda
    n_critic: int = 5  # Wasserstein: critic steps per generator step
    warmup_critic: int = 100  # wgan-clip: critic steps per G step early on and periodically
    warmup_g_steps: int = 25  # ... for the first this many G steps
    warmup_every: int = 500  # ... and before every this-many-th G step (0 = never)
    d_norm: str = "batch"  # D normalisation: 'batch' (ACGAN), 'layer'/'none' (critics)
    ema: float = 0.999  # decay of the G weight average used for samples and metrics (0 = off)
    epoch_images: int | None = None  # images per epoch; None = one pass
    max_images: int | None = None  # use only the first N training images (smoke)
    epochs: int = run_field(50)  # epochs to train
    max_seconds: float | None = run_field(200.0)  # training-time budget for this model
    amp: bool = run_field(True)  # bf16 autocast + channels_last where bf16 is native (losses stay fp32)


@dataclass
class EncoderConfig:
    """The encoder E trained against a frozen G; saved inside its checkpoint."""

    e_conv_dim: int = 32  # E's first-layer channels
    batch_size: int = 64  # generated (and real) images per step
    lr: float = 5e-4  # Adam learning rate
    loss: str = "l2"  # pixel loss of G(E(x), c) vs x: 'l1' or 'l2'
    latent_weight: float = 0.0  # latent-cycle term ||E(G(z, c)) - z||^2 (the fix)
    prior_weight: float = 0.0  # moment penalty keeping E's codes N(0, I) (the fix)
    real_weight: float = 0.0  # pixel loss on real images too (the fix; 0 = generated only)
    cls_weight: float = 1.0  # E's class head (used for uploads without a label)
    epoch_images: int | None = None  # images per epoch; None = one pass
    max_images: int | None = None  # use only the first N training images (smoke)
    epochs: int = run_field(50)  # epochs to train
    max_seconds: float | None = run_field(60.0)  # training-time budget for this encoder
    amp: bool = run_field(True)  # bf16 autocast where bf16 is native
    # Conversion-time options: they do not change E's weights.
    latent_steps: int = run_field(0)  # per-image latent optimisation steps after E at conversion (the fix)
    latent_lr: float = run_field(0.05)  # Adam step of that optimisation
    latent_prior: float = run_field(1e-3)  # weight of ||z||^2 / z_dim there (keeps z on G's prior)
    map_steps: int = run_field(0)  # then steps on G's first map, from G.first_map(z, c) (convert)
    map_lr: float = run_field(0.01)  # Adam step of that optimisation (small: the map stays one G knows)
    residual_strength: float = run_field(1.0)  # residual conversions: x + strength * (G(z, 1 - c) - G(z, c))


@dataclass
class SmileConfig:
    """Everything notebook 03 trains: two GANs and the encoders (before / after the fix)."""

    acgan: GANConfig = field(default_factory=GANConfig)
    wacgan: GANConfig = field(default_factory=lambda: GANConfig(loss="wgan-gp", betas=(0.0, 0.9), d_norm="layer"))
    encoder_before: EncoderConfig = field(default_factory=EncoderConfig)  # the original: pixel loss only
    encoder_after: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        latent_weight=1.0, prior_weight=0.1, real_weight=1.0, latent_steps=30))
    eval_images: int = run_field(1000, rehearsal_max=500)  # test images converted for conversion/preserve/psnr
    # The GANs the notebook trains and converts with (and their encoders): ('acgan',) drops the WACGAN, as
    # the celeba set does, whose 64 px WACGAN is not worth its megabytes on a CPU.
    gans: tuple = ("acgan", "wacgan")

    @property
    def img_size(self) -> int:
        """Return the image side the converter works at (both GANs share it)."""
        return self.acgan.img_size


def _smoke_gan(**kw) -> GANConfig:
    return GANConfig(g_conv_dim=16, d_conv_dim=16, z_dim=32, batch_size=32, epochs=2, max_seconds=6,
                     max_images=256, **kw)


def _smoke_encoder(**kw) -> EncoderConfig:
    return EncoderConfig(e_conv_dim=16, batch_size=32, epochs=6, max_seconds=4, max_images=256, **kw)


PRESETS = {
    "smoke": SmileConfig(
        acgan=_smoke_gan(),
        wacgan=_smoke_gan(loss="wgan-clip", lr=5e-5, d_norm="none", warmup_critic=5, warmup_g_steps=2),
        encoder_before=_smoke_encoder(),
        encoder_after=_smoke_encoder(latent_weight=1.0, prior_weight=0.1, real_weight=1.0, latent_steps=5,
                                     map_steps=3),
        eval_images=128),
    # D's class head on real faces only, L_C doubled and a shorter average: chosen for the oracle's
    # class accuracy in a 3-minute budget (docs/experiments.md, SMiLE).
    "demo": SmileConfig(
        acgan=GANConfig(fm="l2", cls_weight=2.0, cls_fake_weight=0.0, ema=0.995, max_seconds=190),
        wacgan=GANConfig(loss="wgan-gp", betas=(0.0, 0.9), d_norm="layer", n_critic=2, warmup_critic=2,
                         warmup_g_steps=0, warmup_every=0, fm="l2", cls_weight=2.0, cls_fake_weight=0.0,
                         ema=0.995, max_seconds=130),
        encoder_before=EncoderConfig(max_seconds=45),
        # map_steps, residual_strength: chosen on celeba_dev's validation faces (docs/experiments.md)
        encoder_after=EncoderConfig(latent_weight=1.0, prior_weight=0.1, real_weight=1.0, latent_steps=30,
                                    map_steps=50, max_seconds=55, residual_strength=1.5),
        eval_images=1000),
    # CelebA's Smiling at 64 px on a GPU; the original WACGAN recipe (RMSProp 5e-5, clip 0.01, n_critic 5)
    "full": SmileConfig(
        acgan=GANConfig(img_size=64, z_dim=100, g_conv_dim=64, d_conv_dim=64, fm="l2", epochs=30, max_seconds=None),
        wacgan=GANConfig(loss="wgan-clip", img_size=64, z_dim=100, g_conv_dim=64, d_conv_dim=64, lr=5e-5,
                         d_norm="batch", fm="l2", epochs=30, max_seconds=None),
        encoder_before=EncoderConfig(e_conv_dim=64, epochs=10, max_seconds=None),
        encoder_after=EncoderConfig(e_conv_dim=64, epochs=10, max_seconds=None, latent_weight=1.0,
                                    prior_weight=0.1, real_weight=1.0, latent_steps=100, map_steps=100),
        eval_images=5000),
}


def config_for(profile: str, **overrides) -> SmileConfig:
    """Return a copy of the profile's preset; nested parts take dicts, e.g. acgan={'img_size': 64}."""
    return choose(PRESETS, profile, **overrides)
