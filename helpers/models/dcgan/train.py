"""Training the course DCGAN (notebooks/01_dcgan_face_generation.ipynb): the step and its trainer.

The networks are in .nets, the losses in helpers.gan, the loop (data, modes, samples, checkpoints)
in helpers.core.train. Every update of one iteration is written out in make_step's `step`.
"""
from __future__ import annotations

import torch

from ...core import distributed
from ...core.average import ema_update, make_average, recalibrate_batchnorm
from ...core.modules import adam, frozen
from ...core.train import Trainer
from ...gan import d_loss as gan_d_loss, diff_augment, g_loss as gan_g_loss, generate, gradient_penalty, sample_z
from ...gan import sampler
from .config import DCGANConfig
from .nets import build_network

def parts(cfg) -> dict:
    """Return the trainers a full run has, {name: build_trainer keyword arguments}: one."""
    return {"dcgan": {}}


def make_step(D, G, G_ema, d_opt, g_opt, cfg: DCGANConfig):
    """Return step(batch, state) -> logs: one D update, then (every n_critic steps for WGAN-GP) one G
    update and the weight average's (G_ema, None for none).

    batch[0]: real faces (B, C, H, W) in [-1, 1]. D learns to tell them from G(z); G learns to make
    D call its faces real (the non-saturating loss of Goodfellow et al. 2014, or the WGAN-GP /
    hinge losses).
    """
    aug = (lambda x: diff_augment(x, cfg.diffaugment)) if cfg.diffaugment else (lambda x: x)
    wgan = cfg.loss == "wgan-gp"
    gan_g_loss(cfg.loss, torch.zeros(1))  # an unknown loss name fails here, not at the first step

    def step(batch, state):
        real = batch[0]  # (B, C, H, W) in [-1, 1]
        z = sample_z(real.shape[0], cfg.z_dim, cfg.z_dist, real.device)  # (B, z_dim)
        fake = G(z)  # (B, C, H, W)
        d_real, d_fake = D(aug(real)), D(aug(fake.detach()))  # (B, 1) logits each
        d_loss = gan_d_loss(cfg.loss, d_real, d_fake, smooth=cfg.smooth)
        if wgan:
            with torch.autocast(real.device.type, enabled=False):  # second-order gradients in fp32
                d_loss = d_loss + cfg.gp_weight * gradient_penalty(D, real.float(), fake.detach().float())
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        distributed.average_gradients(d_opt)  # several processes: the global batch's gradient
        d_opt.step()
        logs = {"d_loss": d_loss.detach(), "d_real": d_real.detach().float().mean(),
                "d_fake": d_fake.detach().float().mean()}
        if wgan and state.step % cfg.n_critic:
            return logs
        with frozen(D):  # G's update needs D's input gradient only, not D's weight gradients
            g_loss = gan_g_loss(cfg.loss, D(aug(fake)))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        distributed.average_gradients(g_opt)
        g_opt.step()
        if G_ema is not None:
            ema_update(G_ema, G, cfg.ema, step=state.step + 1)
        logs["g_loss"] = g_loss.detach()
        return logs

    return step


def build_trainer(cfg: DCGANConfig, faces, device, ckpt_dir, *, fixed_z: torch.Tensor | None = None,
                  seed: int = 0, **trainer_kw):
    """Return (trainer, nets) for cfg on a FaceSet: nets = {'D', 'G', 'G_ema'} on device.

    fixed_z: the latents of the per-epoch sample grid (default: 16 seeded ones). trainer_kw go to
    the Trainer (epoch_end_fn, keep_best, extra_config, live, progress, ...).
    """
    D, G = build_network(cfg.d_conv_dim, cfg.g_conv_dim, cfg.z_dim, img_size=cfg.img_size, channels=faces.channels,
                         init=cfg.init, d_norm="layer" if cfg.loss == "wgan-gp" else "batch")
    betas = (0.0, 0.9) if cfg.loss == "wgan-gp" else (cfg.beta1, cfg.beta2)  # Gulrajani et al., algorithm 1
    d_opt, g_opt = adam(D.parameters(), cfg.lr, betas), adam(G.parameters(), cfg.lr, betas)
    if cfg.lr_schedule not in ("none", "cosine"):
        raise ValueError(f"lr_schedule={cfg.lr_schedule!r}: use 'none' or 'cosine'")
    schedulers = {} if cfg.lr_schedule == "none" else {
        k: torch.optim.lr_scheduler.CosineAnnealingLR(o, cfg.epochs, eta_min=cfg.lr * 0.1)
        for k, o in (("d", d_opt), ("g", g_opt))}
    nets, before_eval = {"D": D, "G": G}, None
    if cfg.ema:
        nets["G_ema"] = make_average(G)
        z_fn = lambda n, g: sample_z(n, cfg.z_dim, cfg.z_dist, generator=g)  # noqa: E731
        # the average's batch norm needs statistics measured with its own weights
        before_eval = lambda: recalibrate_batchnorm(nets["G_ema"], z_fn, cfg.ema_bn_samples)  # noqa: E731
    fixed_z = (sample_z(16, cfg.z_dim, cfg.z_dist, seed=0) if fixed_z is None else fixed_z).to(device)
    trainer = Trainer("dcgan", modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_step(D, G, nets.get("G_ema"), d_opt, g_opt, cfg), faces=faces.head(cfg.max_images),
                      batch_size=cfg.batch_size, epoch_images=cfg.epoch_images, seed=seed, config=cfg,
                      device=device, ckpt_dir=ckpt_dir, channels_last=cfg.amp, amp=cfg.amp,
                      schedulers=schedulers, sample_fn=lambda m: sampler(m)(fixed_z), before_eval=before_eval,
                      **trainer_kw)
    return trainer, trainer.modules


def samples(nets: dict, cfg: DCGANConfig, n: int, seed: int = 7) -> torch.Tensor:
    """Return n samples (n, C, H, W) in [-1, 1] from the averaged generator, repeatable by seed."""
    return generate(sampler(nets), sample_z(n, cfg.z_dim, cfg.z_dist, seed=seed))


def evaluate(nets: dict, cfg: DCGANConfig, judges, test, n: int) -> dict:
    """Return the judges' scores of n samples against n test faces (see helpers.eval.panel.Judges)."""
    return judges.generated(samples(nets, cfg, n), test, n)
