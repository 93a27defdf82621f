"""Training and sampling the LAPGAN (notebook 05): one trainer per pyramid level.

Each level learns from the pyramids of real faces, independently of the others (Denton et al.
2015, section 3.3): the base GAN on the faces average-pooled to 16 px, level k's conditional GAN on
(residual h_k, upsampled coarser real image). Sampling chains them coarse to fine (section 3.2).
The options are the original Torch face generator's: D/G iterations per batch, L1/L2 weight
penalties and gradient clamping for each network, sgd/adam/adagrad, examples per epoch.
"""
from __future__ import annotations

import torch

from ...core import distributed, published
from ...core.average import ema_update, make_average, recalibrate_batchnorm
from ...core.modules import adam, frozen
from ...core.train import Trainer
from ...gan import diff_augment, fake_loss, real_loss, sampler
from .config import LapGANConfig
from .nets import build_level, downsample, level_name, resize_to, upsample


def parts(cfg: LapGANConfig) -> dict:
    """Return the trainers a full run has, {name: build_trainer keyword arguments}: one per level."""
    return {f"lapgan_{size}": {"level": level} for level, size in enumerate(cfg.sizes)}


def make_optimizer(params, cfg: LapGANConfig, lr: float) -> torch.optim.Optimizer:
    """Return the optimiser cfg.optimizer names ('adam' | 'sgd' | 'adagrad') over params."""
    if cfg.optimizer == "adam":
        return adam(params, lr, (cfg.beta1, 0.999))
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    raise ValueError(f"optimizer={cfg.optimizer!r}: use 'adam', 'sgd' or 'adagrad'")


def regularise_gradients(net: torch.nn.Module, l1: float, l2: float, clamp: float) -> None:
    """Add the L1/L2 weight penalties' gradients (l1 sign(w) + l2 w), then clamp each gradient to
    [-clamp, clamp] (0 = no clamp), as the original did before every optimiser step."""
    for p in net.parameters():
        if p.grad is None:
            continue
        if l1:
            p.grad.add_(p.detach().sign(), alpha=l1)
        if l2:
            p.grad.add_(p.detach(), alpha=l2)
        if clamp:
            p.grad.clamp_(-clamp, clamp)


def level_noise(n: int, cfg: LapGANConfig, size: int, device="cpu", generator=None) -> torch.Tensor:
    """Return the noise planes of one level: (n, noise_planes, size, size) ~ U(-1, 1)."""
    return torch.rand(n, cfg.noise_planes, size, size, generator=generator).to(device) * 2 - 1


def base_z(n: int, cfg: LapGANConfig, device="cpu", seed: int | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Return (n, z_dim) base noise ~ U(-1, 1) (the original's uniform noise); seed (or a generator) repeats it."""
    g = torch.Generator().manual_seed(seed) if seed is not None else generator
    return (torch.rand(n, cfg.z_dim, generator=g) * 2 - 1).to(device)


def make_step(level: int, D, G, G_ema, d_opt, g_opt, cfg: LapGANConfig):
    """Return step(batch, state) -> logs for one pyramid level: d_iters D updates, then g_iters G
    updates and the weight average's (G_ema, None for none).

    batch[0]: faces (B, C, S, S) in [-1, 1] at the finest size; the level pools them down to its own.
    Level 0 judges whole base-size images; level k judges residuals given the upsampled coarser image.
    """
    size = cfg.sizes[level]
    policy = cfg.diffaugment
    if level > 0:  # colour jitter would break the residual/condition pairing; keep the geometric parts
        policy = ",".join(p for p in policy.split(",") if p.strip() and p.strip() != "color")
    aug = (lambda t: diff_augment(t, policy)) if policy else (lambda t: t)

    def fake_of(cond, n, device):
        if level == 0:
            return G(base_z(n, cfg, device))
        return G(cond, level_noise(n, cfg, size, device))

    def judge(x, cond):
        if level == 0:
            return D(aug(x)).float()
        both = aug(torch.cat([x, cond], 1))  # same shift / cutout for residual and condition
        return D(both[:, :x.shape[1]], both[:, x.shape[1]:]).float()

    def step(batch, state):
        real = resize_to(batch[0], size)
        cond = None
        if level > 0:
            cond = upsample(downsample(real))  # (B, C, S, S) the coarser real image, upsampled
            real = real - cond  # the residual
        logs = {}
        for _ in range(cfg.d_iters):
            fake = fake_of(cond, real.shape[0], real.device)
            d_real, d_fake = judge(real, cond), judge(fake.detach(), cond)
            d_loss = real_loss(d_real) + fake_loss(d_fake)
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            distributed.average_gradients(d_opt)  # several processes: the global batch's gradient is clamped
            regularise_gradients(D, cfg.d_l1, cfg.d_l2, cfg.d_clamp)
            d_opt.step()
            logs["d_loss"] = d_loss.detach()
        logs.update(d_real=torch.sigmoid(d_real.detach()).mean(), d_fake=torch.sigmoid(d_fake.detach()).mean())
        for _ in range(cfg.g_iters):
            fake = fake_of(cond, real.shape[0], real.device)
            with frozen(D):  # G's update needs D's input gradient only
                g_loss = real_loss(judge(fake, cond))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            distributed.average_gradients(g_opt)
            regularise_gradients(G, cfg.g_l1, cfg.g_l2, cfg.g_clamp)
            g_opt.step()
            logs["g_loss"] = g_loss.detach()
        if G_ema is not None:
            ema_update(G_ema, G, cfg.ema, step=state.step + 1)
        return logs

    return step


def level_seconds(cfg: LapGANConfig, level: int) -> float | None:
    """Return the training budget of one level: base_share of max_seconds for the base, the rest split."""
    if cfg.max_seconds is None:
        return None
    n_up = len(cfg.sizes) - 1
    if n_up == 0:
        return cfg.max_seconds
    return cfg.max_seconds * (cfg.base_share if level == 0 else (1 - cfg.base_share) / n_up)


def build_trainer(cfg: LapGANConfig, faces, device, ckpt_dir, *, level: int = 0, fixed=None, **trainer_kw):
    """Return (trainer, nets) of one pyramid level; nets = {'D', 'G'[, 'G_ema']} on device.

    faces: a FaceSet at cfg.img_size (its own pyramid is taken in each step). fixed: for the
    per-epoch sample grid, base noise (level 0) or real faces at img_size (levels > 0: their
    coarser version is refined, so the grid shows what this level adds).
    """
    if faces.image_size != cfg.img_size:
        raise ValueError(f"faces are {faces.image_size} px but cfg.img_size={cfg.img_size}: load them at that size")
    nets = build_level(cfg, level, faces.channels)
    D, G = nets["D"], nets["G"]
    d_opt, g_opt = make_optimizer(D.parameters(), cfg, cfg.lr_d), make_optimizer(G.parameters(), cfg, cfg.lr_g)
    size = cfg.sizes[level]
    if level == 0:
        fixed_z = (base_z(16, cfg, seed=0) if fixed is None else fixed).to(device)
        sample_fn = lambda m: sampler(m)(fixed_z)  # noqa: E731
    else:
        real = faces.sample(16, seed=0) if fixed is None else fixed
        up = upsample(downsample(resize_to(real.to(device), size)))
        noise = level_noise(len(up), cfg, size, device, torch.Generator().manual_seed(0))
        sample_fn = lambda m: up + sampler(m)(up, noise)  # noqa: E731
    before_eval = None
    if cfg.ema:
        nets["G_ema"] = make_average(G)
        if level == 0 and cfg.base_arch == "dcgan":  # a batch-norm base's average needs statistics of its own
            z_fn = lambda n, g: base_z(n, cfg, generator=g)  # noqa: E731
            before_eval = lambda: recalibrate_batchnorm(nets["G_ema"], z_fn, 4096)  # noqa: E731
    trainer = Trainer(f"lapgan_{level_name(cfg, level)}", modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_step(level, D, G, nets.get("G_ema"), d_opt, g_opt, cfg),
                      faces=faces.head(cfg.max_images), batch_size=cfg.batch_size, epoch_images=cfg.epoch_images,
                      flip=cfg.flip, seed=cfg.seed, config=cfg, extra_config={"level": level, "channels": faces.channels},
                      device=device, ckpt_dir=ckpt_dir, amp=cfg.amp, sample_fn=sample_fn, before_eval=before_eval,
                      **trainer_kw)
    return trainer, trainer.modules


def train_pyramid(cfg: LapGANConfig, faces, device, ckpt_root, weights=None, **trainer_kw):
    """Train every level in turn (each with its share of the budget), or load each from a published
    set's `weights` (helpers.core.published); return (trainers, Gs, Ds).

    trainers: {level name: Trainer} (.state: its TrainState); Gs: [G per level] (the averages when
    cfg.ema); Ds: [D per level]. Checkpoints go to ckpt_root/<level name>/ and a rerun resumes each level.
    """
    trainers, Gs, Ds = {}, [], []
    for level in range(len(cfg.sizes)):
        name = level_name(cfg, level)
        trainer, nets = build_trainer(cfg, faces, device, ckpt_root / name if ckpt_root else None, level=level,
                                      **trainer_kw)
        published.fit(trainer, weights, cfg.epochs, max_seconds=level_seconds(cfg, level), part=name)
        trainers[name] = trainer
        Gs.append(sampler(nets).eval())
        Ds.append(nets["D"].eval())
    return trainers, Gs, Ds
