"""Training and scoring the SMiLE converter (notebooks/03_smile_converter.ipynb).

Configs with presets, the ACGAN / WACGAN step, the encoder step, trainers built on
helpers.train.Trainer, the conversion x -> z = E(x) -> G(z, flipped class) with optional
per-image latent optimisation, and the numbers metrics.json reports. Networks and losses are in
helpers.smile.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import torch

from . import smile
from .dcgan import gradient_penalty, wgan_d_loss, wgan_g_loss
from .dcgan_train import generator_update, sample_z
from .runtime import ProfilePresets
from .train import Trainer, adam, frozen


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
    epochs: int = 50  # passes over the training split
    max_seconds: float | None = 200.0  # training-time budget for this model
    amp: bool = True  # bf16 autocast (losses stay fp32)
    max_images: int | None = None  # use only the first N training images (smoke)


@dataclass
class EncoderConfig:
    """The encoder E trained against a frozen G; saved inside its checkpoint."""

    conv_dim: int = 32  # E's first-layer channels
    batch_size: int = 64  # generated (and real) images per step
    lr: float = 5e-4  # Adam learning rate
    loss: str = "l2"  # pixel loss of G(E(x), c) vs x: 'l1' or 'l2'
    latent_weight: float = 0.0  # latent-cycle term ||E(G(z, c)) - z||^2 (the fix)
    prior_weight: float = 0.0  # moment penalty keeping E's codes N(0, I) (the fix)
    real_weight: float = 0.0  # pixel loss on real images too (the fix; 0 = generated only)
    cls_weight: float = 1.0  # E's class head (used for uploads without a label)
    epochs: int = 50  # passes over the training split
    max_seconds: float | None = 60.0  # training-time budget for this encoder
    latent_steps: int = 0  # per-image latent optimisation steps after E at conversion (the fix)
    latent_lr: float = 0.05  # Adam step of that optimisation
    latent_prior: float = 1e-3  # weight of ||z||^2 / z_dim there (keeps z on G's prior)
    amp: bool = True  # bf16 autocast


CONVERSION_KEYS = ("latent_steps", "latent_lr", "latent_prior")


@dataclass
class SmileConfig:
    """Everything notebook 03 trains: two GANs and the encoders (before / after the fix)."""

    acgan: GANConfig = field(default_factory=GANConfig)
    wacgan: GANConfig = field(default_factory=lambda: GANConfig(loss="wgan-gp", betas=(0.0, 0.9), d_norm="layer"))
    encoder_before: EncoderConfig = field(default_factory=EncoderConfig)  # the original: pixel loss only
    encoder_after: EncoderConfig = field(default_factory=lambda: EncoderConfig(
        latent_weight=1.0, prior_weight=0.1, real_weight=1.0, latent_steps=30))
    eval_images: int = 1000  # test images converted for conversion/preserve/psnr

    def to_dict(self) -> dict:
        """Return the whole configuration as plain nested dicts (for metrics.json)."""
        return asdict(self)


def _smoke_gan(**kw):
    return GANConfig(g_conv_dim=16, d_conv_dim=16, z_dim=32, batch_size=32, epochs=2, max_seconds=6,
                     max_images=256, **kw)


PRESETS = ProfilePresets({
    "smoke": SmileConfig(
        acgan=_smoke_gan(),
        wacgan=_smoke_gan(loss="wgan-clip", lr=5e-5, d_norm="none", warmup_critic=5, warmup_g_steps=2),
        encoder_before=EncoderConfig(conv_dim=16, batch_size=32, epochs=2, max_seconds=4),
        encoder_after=EncoderConfig(conv_dim=16, batch_size=32, epochs=2, max_seconds=4, latent_weight=1.0,
                                    prior_weight=0.1, real_weight=1.0, latent_steps=5),
        eval_images=128),
    "demo": SmileConfig(
        # D's class head on real faces only, L_C doubled, a shorter EMA: together they took the oracle's
        # class accuracy at 190 s from 0.83 to 0.96 (measured on this CPU, one seed)
        acgan=GANConfig(fm="l2", cls_weight=2.0, cls_fake_weight=0.0, ema=0.995, max_seconds=190),
        wacgan=GANConfig(loss="wgan-gp", betas=(0.0, 0.9), d_norm="layer", n_critic=2, warmup_critic=2,
                         warmup_g_steps=0, warmup_every=0, fm="l2", cls_weight=2.0, cls_fake_weight=0.0,
                         ema=0.995, max_seconds=130),
        encoder_before=EncoderConfig(max_seconds=45),
        encoder_after=EncoderConfig(latent_weight=1.0, prior_weight=0.1, real_weight=1.0, latent_steps=30,
                                    max_seconds=55),
        eval_images=1000),
    # CelebA's Smiling at 64 px on a GPU; the original WACGAN recipe (RMSProp 5e-5, clip 0.01, n_critic 5)
    "full": SmileConfig(
        acgan=GANConfig(img_size=64, z_dim=100, g_conv_dim=64, d_conv_dim=64, fm="l2", epochs=30, max_seconds=None),
        wacgan=GANConfig(loss="wgan-clip", img_size=64, z_dim=100, g_conv_dim=64, d_conv_dim=64, lr=5e-5,
                         d_norm="batch", fm="l2", epochs=30, max_seconds=None),
        encoder_before=EncoderConfig(conv_dim=64, epochs=10, max_seconds=None),
        encoder_after=EncoderConfig(conv_dim=64, epochs=10, max_seconds=None, latent_weight=1.0,
                                    prior_weight=0.1, real_weight=1.0, latent_steps=100),
        eval_images=5000),
}, eval_images=500)  # cap in a rehearsal (`make rehearse`)


def config_for(profile: str) -> SmileConfig:
    """Return a copy of the profile's preset (edit its fields freely)."""
    return copy.deepcopy(PRESETS[profile])


def with_size(cfg: SmileConfig, img_size: int) -> SmileConfig:
    """Return cfg with both GANs at img_size (e.g. 128 on CelebA)."""
    return replace(cfg, acgan=replace(cfg.acgan, img_size=img_size), wacgan=replace(cfg.wacgan, img_size=img_size))


# ----------------------------------------------------------------------------------- GAN step
def _labels(attrs: torch.Tensor, cols: list[int]) -> torch.Tensor:
    return attrs[:, cols].float()  # (B, A)


def make_gan_step(D, G, d_opt, g_opt, cfg: GANConfig, cols: list[int], device, G_ema=None):
    """Return step(batch, state) -> logs: one D/critic update and, when due, one G update.

    batch: (x (B, C, H, W) in [-1, 1], attrs (B, all attributes)); `cols` picks the class columns.
    Fake classes are the batch's real labels shuffled, so real and fake share one class marginal.
    """
    if cfg.loss not in ("bce", "wgan-clip", "wgan-gp"):
        raise ValueError(f"loss={cfg.loss!r}: use 'bce', 'wgan-clip' or 'wgan-gp'")
    if cfg.fm not in ("none", "l1", "l2"):
        raise ValueError(f"fm={cfg.fm!r}: use 'none', 'l1' or 'l2'")
    wgan = cfg.loss != "bce"
    is_g_step = (smile.critic_schedule(cfg.n_critic, cfg.warmup_critic, cfg.warmup_g_steps, cfg.warmup_every)
                 if wgan else (lambda step: True))
    critic = smile.Critic(D)

    def step(batch, state):
        real, attrs = batch
        c_real = _labels(attrs, cols)  # (B, A)
        c_fake = c_real[torch.randperm(len(c_real), device=c_real.device)]  # (B, A)
        z = sample_z(real.shape[0], cfg.z_dim, "normal", device)  # (B, z_dim)
        fake = G(z, c_fake)  # (B, C, H, W)
        adv_r, cls_r = D(real)
        adv_f, cls_f = D(fake.detach())
        l_cls = smile.class_loss(cls_r, c_real) + cfg.cls_fake_weight * smile.class_loss(cls_f, c_fake)
        if wgan:
            d_loss = wgan_d_loss(adv_r, adv_f) + cfg.cls_weight * l_cls
            if cfg.loss == "wgan-gp":
                with torch.autocast(device.type, enabled=False):  # second-order gradients in fp32
                    d_loss = d_loss + cfg.gp_weight * gradient_penalty(critic, real.float(), fake.detach().float())
        else:
            d_loss = smile.adv_loss(adv_r, True, cfg.smooth) + smile.adv_loss(adv_f, False) + cfg.cls_weight * l_cls
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        if cfg.loss == "wgan-clip":
            smile.clip_weights(D, cfg.clip)
        logs = {"d_loss": d_loss.detach(), "d_cls": l_cls.detach()}
        if not is_g_step(state.step):
            return logs
        with frozen(D):  # G's update needs D's input gradient only
            adv_g, cls_g, f_fake = D(fake, with_features=True)
        g_loss = (wgan_g_loss(adv_g) if wgan else smile.adv_loss(adv_g, True)) + cfg.cls_weight * smile.class_loss(cls_g, c_fake)
        if cfg.fm != "none":
            with torch.no_grad():
                f_real = D(real, with_features=True)[2]
            g_loss = g_loss + cfg.fm_weight * smile.feature_matching(f_real, f_fake, cfg.fm)
        logs["g_loss"] = generator_update(g_loss, g_opt, G, G_ema, cfg.ema, state.step)
        return logs

    return step


def fixed_inputs(cfg: GANConfig, n: int = 8, seed: int = 0):
    """Return (z, c) for the sample grid: n latents twice, first row class 0, second row class 1."""
    z = sample_z(n, cfg.z_dim, "normal", seed=seed).repeat(2, 1)  # (2n, z_dim)
    c = torch.cat([torch.zeros(n, len(cfg.attrs)), torch.ones(n, len(cfg.attrs))])  # (2n, A)
    return z, c


def build_gan_trainer(cfg: GANConfig, faces, device, ckpt_dir, name: str | None = None,
                      extra_config: dict | None = None, seed: int = 0, **trainer_kw):
    """Return (trainer, nets) for one conditional GAN: nets = {'D', 'G', 'G_ema'} on device.

    faces: the training FaceSet (its attr_names must include cfg.attrs). name: 'acgan' or 'wacgan'
    (default from cfg.loss), also the checkpoint's model name.
    """
    name = name or ("acgan" if cfg.loss == "bce" else "wacgan")
    cols = [faces.attr_index(a) for a in cfg.attrs]
    loader = faces.loader(cfg.batch_size, device=device, channels_last=cfg.amp, seed=seed)
    D, G = smile.build_gan(cfg.z_dim, len(cfg.attrs), cfg.g_conv_dim, cfg.d_conv_dim, img_size=cfg.img_size,
                           channels=faces.channels, d_norm=cfg.d_norm)
    D, G = D.to(device), G.to(device)
    if cfg.amp:
        D, G = D.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval() if cfg.ema else None
    if cfg.loss == "wgan-clip":  # RMSProp: momentum-free, as the clipped WGAN needs (Arjovsky et al. 3)
        d_opt, g_opt = (torch.optim.RMSprop(m.parameters(), lr=cfg.lr) for m in (D, G))
    else:
        d_opt, g_opt = (adam(m.parameters(), cfg.lr, cfg.betas) for m in (D, G))
    nets = {"D": D, "G": G, **({"G_ema": G_ema} if G_ema is not None else {})}
    sampler = G_ema if G_ema is not None else G
    z_fix, c_fix = (t.to(device) for t in fixed_inputs(cfg))
    trainer = Trainer(name, modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_gan_step(D, G, d_opt, g_opt, cfg, cols, device, G_ema), loader=loader,
                      config={**asdict(cfg), **(extra_config or {})}, device=device, ckpt_dir=ckpt_dir,
                      sample_fn=lambda: sampler(z_fix, c_fix), amp=cfg.amp, **trainer_kw)
    return trainer, nets


def sampler_of(nets: dict):
    """Return the generator to sample from: the EMA copy when there is one."""
    return nets.get("G_ema", nets["G"])


# ------------------------------------------------------------------------------- encoder step
def make_encoder_step(E, G, e_opt, cfg: EncoderConfig, z_dim: int, cols: list[int], device):
    """Return step(batch, state) -> logs for E against the frozen G (kept in eval mode).

    Always: x = G(z, c) for z ~ N(0, I), pixel loss between G(E(x), c) and x ('l1'/'l2'), and
    E's class head on x. The fix adds: latent_weight * ||E(x) - z||^2 (latent cycle),
    prior_weight * prior_penalty(E(x)), real_weight * pixel loss on real images with their labels.
    """
    for p in G.parameters():
        p.requires_grad_(False)

    def step(batch, state):
        real, attrs = batch
        G.eval()
        c_real = _labels(attrs, cols)  # (B, A)
        c = c_real[torch.randperm(len(c_real), device=c_real.device)]  # (B, A)
        z = sample_z(real.shape[0], z_dim, "normal", device)  # (B, z_dim)
        with torch.no_grad():
            x = G(z, c)  # (B, C, H, W)
        z_hat, cls = E(x)
        pix = smile.image_loss(G(z_hat, c), x, cfg.loss)
        loss = pix + cfg.cls_weight * smile.class_loss(cls, c)
        logs = {"pixel": pix.detach()}
        if cfg.latent_weight:
            lat = (z_hat.float() - z).pow(2).mean()
            loss = loss + cfg.latent_weight * lat
            logs["latent"] = lat.detach()
        zs = [z_hat]
        if cfg.real_weight:
            z_r, cls_r = E(real)
            pix_r = smile.image_loss(G(z_r, c_real), real, cfg.loss)
            loss = loss + cfg.real_weight * pix_r + cfg.cls_weight * smile.class_loss(cls_r, c_real)
            logs["pixel_real"] = pix_r.detach()
            zs.append(z_r)
        if cfg.prior_weight:
            prior = sum(smile.prior_penalty(zz) for zz in zs)
            loss = loss + cfg.prior_weight * prior
            logs["prior"] = prior.detach()
        e_opt.zero_grad(set_to_none=True)
        loss.backward()
        e_opt.step()
        logs["e_loss"] = loss.detach()
        return logs

    return step


def build_encoder_trainer(cfg: EncoderConfig, G, gan_cfg: GANConfig, faces, device, ckpt_dir,
                          generator_tag: str = "", seed: int = 0, **trainer_kw):
    """Return (trainer, E): E trained against the frozen G (use the EMA generator).

    generator_tag identifies the G (e.g. 'acgan@step 9000'); it is saved in the config, so an
    encoder of another generator is refused on resume (CheckpointMismatch).
    """
    cols = [faces.attr_index(a) for a in gan_cfg.attrs]
    loader = faces.loader(cfg.batch_size, device=device, channels_last=cfg.amp, seed=seed)
    E = smile.Encoder(gan_cfg.z_dim, len(gan_cfg.attrs), cfg.conv_dim, img_size=gan_cfg.img_size,
                      channels=faces.channels).to(device)
    if cfg.amp:
        E = E.to(memory_format=torch.channels_last)
    e_opt = adam(E.parameters(), cfg.lr, (0.9, 0.999))
    # Conversion-time options do not change E's weights, so they stay out of the checked config.
    config = {k: v for k, v in asdict(cfg).items() if k not in CONVERSION_KEYS}
    config = {**config, "generator": generator_tag, "z_dim": gan_cfg.z_dim, "attrs": list(gan_cfg.attrs),
              "img_size": gan_cfg.img_size}
    trainer = Trainer("smile_encoder", modules={"E": E}, optimizers={"e": e_opt},
                      step_fn=make_encoder_step(E, G, e_opt, cfg, gan_cfg.z_dim, cols, device), loader=loader,
                      config=config, device=device, ckpt_dir=ckpt_dir, amp=cfg.amp,
                      keep_every=0, **trainer_kw)
    return trainer, E


# ------------------------------------------------------------------------------------ scoring
def class_accuracy(G, oracle, cfg: GANConfig, n: int = 2000, seed: int = 5) -> float:
    """Return how often the oracle reads the class G was given (in [0, 1]; half the samples per class)."""
    from .metrics import attribute_accuracy

    z = sample_z(n, cfg.z_dim, "normal", seed=seed)
    c = (torch.arange(n) % 2).float()[:, None].repeat(1, len(cfg.attrs))  # (n, A): 0, 1, 0, 1, ...
    return attribute_accuracy(oracle, smile.generate(G, z, c), c, attr_names=list(cfg.attrs))["mean_accuracy"]


def fd_oracle(G, oracle, cfg: GANConfig, real_fs, n: int = 2000, seed: int = 6) -> float:
    """Return the oracle FD between n samples (classes drawn as in real_fs) and n real_fs images."""
    from .metrics import fd_oracle as fd

    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(real_fs), (n,), generator=g)
    c = real_fs.attrs[idx][:, [real_fs.attr_index(a) for a in cfg.attrs]]
    z = sample_z(n, cfg.z_dim, "normal", seed=seed)
    return fd(oracle, smile.generate(G, z, c), real_fs.sample(n, seed=2))


def sample_index(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Return the indices FaceSet.sample(n, seed) picks from a set of n_total faces (n <= n_total)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n]


def conversion_metrics(G, E, oracle, faces, gan_cfg: GANConfig, enc_cfg: EncoderConfig, n: int = 1000,
                       seed: int = 0, latent_steps: int | None = None) -> dict:
    """Return the converter's scores on n real faces (e.g. the test split), each in [0, 1] or dB.

    conversion_accuracy: the oracle reads the flipped class on G(E(x), 1 - c);
    preserve_accuracy: the oracle's read-out of every other attribute is the same on x and on the
    converted face; recon_psnr: PSNR of G(E(x), c) against x; class_from_E: E's class head vs labels.
    latent_steps overrides enc_cfg.latent_steps (0: E's codes as they come).
    """
    from .metrics import attribute_accuracy, preservation, psnr

    idx = sample_index(len(faces), n, seed)
    steps = enc_cfg.latent_steps if latent_steps is None else latent_steps
    x = faces.images[idx].float() / 127.5 - 1.0  # (n, C, H, W) in [-1, 1]
    c = faces.attrs[idx][:, [faces.attr_index(a) for a in gan_cfg.attrs]]  # (n, A)
    out = smile.convert(G, E, x, c, 1 - c, steps, enc_cfg.latent_lr, enc_cfg.latent_prior, enc_cfg.loss)
    names = list(gan_cfg.attrs)
    _, p_cls = smile.encode(E, x)
    return {"conversion_accuracy": attribute_accuracy(oracle, out["converted"], 1 - c, attr_names=names)["mean_accuracy"],
            "preserve_accuracy": preservation(oracle, x, out["converted"], names),
            "recon_psnr": psnr(out["recon"], x),
            "recon_class_accuracy": attribute_accuracy(oracle, out["recon"], c, attr_names=names)["mean_accuracy"],
            "class_from_E": float(((p_cls > 0.5).float() == c).float().mean()),
            "z_norm_ratio": float(out["z"].norm(dim=1).mean() / gan_cfg.z_dim ** 0.5)}
