"""Training and sampling the LAPGAN (notebooks/05_lapgan.ipynb): one Trainer per pyramid level.

Each level learns from the pyramids of real faces, independently of the others (Denton et al.
2015, section 3.3): the base GAN on the faces average-pooled to 16 px, level k's conditional GAN on
(residual h_k, upsampled coarser real image). Sampling chains them coarse to fine (section 3.2).
The options are the original Torch face generator's: D/G iterations per batch, L1/L2 weight
penalties and gradient clamping for each network, sgd/adam/adagrad, examples per epoch.
"""
from __future__ import annotations

import copy
from dataclasses import asdict

import torch

from . import dcgan, lapgan
from .augment import diff_augment
from .dcgan_train import ema_update
from .lapgan import LapGANConfig, upsample
from .train import Trainer, adam, frozen


class EpochLoader:
    """Shuffled batches of `examples_per_epoch` faces (N_epoch of the original), resumable.

    Yields (x, attrs): x (B, C, S, S) float in [-1, 1]. The order depends only on (seed, epoch), so a
    resumed run replays the batches an uninterrupted one would have seen.
    """

    def __init__(self, faces, batch_size: int, examples_per_epoch: int | None = None, *, seed: int = 0,
                 flip: bool = False, device=None):
        self.n = len(faces) if examples_per_epoch is None else int(examples_per_epoch)
        if self.n < batch_size:
            raise ValueError(f"examples_per_epoch={self.n} (or {len(faces)} images) is below "
                             f"batch_size={batch_size}: lower batch_size or use more examples")
        self.dataset, self.batch_size, self.seed, self.flip = faces, batch_size, seed, flip
        self.device, self.epoch = torch.device(device or "cpu"), 0

    def __len__(self) -> int:
        return self.n // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def iterate(self, start_batch: int = 0):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = len(self.dataset)
        reps = -(-self.n // total)  # several passes when an epoch holds more examples than the set
        order = torch.cat([torch.randperm(total, generator=g) for _ in range(reps)])[:self.n]
        flips = torch.rand(self.n, generator=g) < 0.5
        images, attrs = self.dataset.images, self.dataset.attrs
        for b in range(start_batch, len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            x = images[order[sl]].float().div_(127.5).sub_(1).to(self.device)
            if self.flip:
                x = torch.where(flips[sl, None, None, None].to(self.device), x.flip(-1), x)
            yield x, attrs[order[sl]]

    def __iter__(self):
        yield from self.iterate()
        self.epoch += 1


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


def base_z(n: int, cfg: LapGANConfig, device="cpu", seed: int | None = None) -> torch.Tensor:
    """Return (n, z_dim) base noise ~ U(-1, 1) (the original's uniform noise); seed repeats it."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    return (torch.rand(n, cfg.z_dim, generator=g) * 2 - 1).to(device)


def make_step(level: int, D, G, d_opt, g_opt, cfg: LapGANConfig, device, G_ema=None):
    """Return step(batch, state) -> logs for one pyramid level: d_iters D updates, then g_iters G updates.

    batch[0]: faces (B, C, S, S) in [-1, 1] at the finest size; the level pools them down to its own.
    Level 0 judges whole base-size images; level k judges residuals given the upsampled coarser image.
    """
    size = cfg.sizes[level]
    policy = cfg.diffaugment
    if level > 0:  # colour jitter would break the residual/condition pairing; keep the geometric parts
        policy = ",".join(p for p in policy.split(",") if p.strip() and p.strip() != "color")
    aug = (lambda t: diff_augment(t, policy)) if policy else (lambda t: t)

    if level == 0:
        def fake_of(real, cond):
            return G(base_z(real.shape[0], cfg, device))

        def judge(x, cond):
            return D(aug(x))
    else:
        def fake_of(real, cond):
            return G(cond, level_noise(cond.shape[0], cfg, size, device))

        def judge(x, cond):
            both = aug(torch.cat([x, cond], 1))  # same shift / cutout for residual and condition
            return D(both[:, :x.shape[1]], both[:, x.shape[1]:])

    def prepare(x):
        x = lapgan.resize_to(x, size)
        if level == 0:
            return x, None
        up = upsample(lapgan.downsample(x))  # (B, C, S, S) the coarser real image, upsampled
        return x - up, up  # (residual, condition)

    def step(batch, state):
        real, cond = prepare(batch[0])
        logs = {}
        for _ in range(cfg.d_iters):
            fake = fake_of(real, cond)
            d_real, d_fake = judge(real, cond), judge(fake.detach(), cond)
            d_loss = dcgan.real_loss(d_real.float()) + dcgan.fake_loss(d_fake.float())
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            regularise_gradients(D, cfg.d_l1, cfg.d_l2, cfg.d_clamp)
            d_opt.step()
        logs.update(d_loss=d_loss.detach(), d_real=torch.sigmoid(d_real.detach().float()).mean(),
                    d_fake=torch.sigmoid(d_fake.detach().float()).mean())
        for _ in range(cfg.g_iters):
            fake = fake_of(real, cond)
            with frozen(D):  # G's update needs D's input gradient only
                g_loss = dcgan.real_loss(judge(fake, cond).float())
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            regularise_gradients(G, cfg.g_l1, cfg.g_l2, cfg.g_clamp)
            g_opt.step()
            if G_ema is not None:
                ema_update(G_ema, G, cfg.ema, step=state.step)
        if cfg.g_iters:
            logs["g_loss"] = g_loss.detach()
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


def build_trainer(cfg: LapGANConfig, level: int, faces, device, ckpt_dir, fixed=None,
                  extra_config: dict | None = None, **trainer_kw):
    """Return (trainer, nets) of one pyramid level; nets = {'D', 'G'[, 'G_ema']} on device.

    faces: a FaceSet at cfg.img_size (its own pyramid is taken in each step). fixed: for the
    per-epoch sample grid, base noise (level 0) or real faces at img_size (levels > 0: their
    coarser version is refined, so the grid shows what this level adds).
    """
    if faces.image_size != cfg.img_size:
        raise ValueError(f"faces are {faces.image_size} px but cfg.img_size={cfg.img_size}: load them at that size")
    device = torch.device(device)
    D, G = lapgan.build_level(cfg, level, faces.channels)
    D, G = D.to(device), G.to(device)
    G_ema = copy.deepcopy(G).eval() if cfg.ema else None
    d_opt, g_opt = make_optimizer(D.parameters(), cfg, cfg.lr_d), make_optimizer(G.parameters(), cfg, cfg.lr_g)
    loader = EpochLoader(faces, cfg.batch_size, cfg.examples_per_epoch, seed=cfg.seed, flip=cfg.flip, device=device)
    nets = {"D": D, "G": G, **({"G_ema": G_ema} if G_ema is not None else {})}
    sampler = G_ema if G_ema is not None else G
    size = cfg.sizes[level]
    if level == 0:
        fixed = (base_z(16, cfg, seed=0) if fixed is None else fixed).to(device)
        sample_fn = lambda: sampler(fixed)  # noqa: E731
    else:
        if fixed is None:
            fixed = faces.sample(16, seed=0)
        up = upsample(lapgan.downsample(lapgan.resize_to(fixed.to(device), size)))
        noise = level_noise(len(up), cfg, size, device, torch.Generator().manual_seed(0))
        sample_fn = lambda: up + sampler(up, noise)  # noqa: E731
    trainer = Trainer(f"lapgan_{lapgan.level_name(cfg, level)}", modules=nets,
                      optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_step(level, D, G, d_opt, g_opt, cfg, device, G_ema), loader=loader,
                      config={**asdict(cfg), "level": level, "channels": faces.channels, **(extra_config or {})},
                      device=device, ckpt_dir=ckpt_dir, sample_fn=sample_fn, amp=cfg.amp, **trainer_kw)
    return trainer, nets


def train_pyramid(cfg: LapGANConfig, faces, device, ckpt_root, extra_config: dict | None = None, **trainer_kw):
    """Train every level in turn (each with its share of the budget); return (states, samplers, Ds).

    states: {level name: TrainState}; samplers: [G per level] (EMA copies when cfg.ema); Ds: [D per
    level]. Checkpoints go to ckpt_root/<level name>/ and a rerun resumes each level.
    """
    states, samplers, Ds = {}, [], []
    for level in range(len(cfg.sizes)):
        name = lapgan.level_name(cfg, level)
        trainer, nets = build_trainer(cfg, level, faces, device, ckpt_root / name, extra_config=extra_config,
                                      **trainer_kw)
        states[name] = trainer.fit(cfg.epochs, max_seconds=level_seconds(cfg, level))
        samplers.append(nets.get("G_ema", nets["G"]).eval())
        Ds.append(nets["D"].eval())
    return states, samplers, Ds


@torch.no_grad()
def sample_pyramid(Gs: list, cfg: LapGANConfig, z: torch.Tensor, noise_seed: int = 0,
                   upto: int | None = None) -> list[dict]:
    """Return the pyramid of samples, one dict per level, coarse to fine (float32, CPU):

    level 0: {'size', 'image'}; level k: {'size', 'up' (coarser image upsampled), 'residual',
    'image' = up + residual}. Images (N, C, S, S) in [-1, 1] (the sum is clamped); z: (N, z_dim).
    upto: stop after that level (default: all of Gs).
    """
    device = next(Gs[0].parameters()).device
    g = torch.Generator().manual_seed(noise_seed)
    was = [G.training for G in Gs]
    for G in Gs:
        G.eval()
    x = Gs[0](z.to(device)).float()
    out = [{"size": x.shape[-1], "image": x.cpu()}]
    for G in Gs[1:(len(Gs) if upto is None else upto + 1)]:
        up = upsample(x)
        h = G(up, level_noise(len(up), cfg, up.shape[-1], device, g)).float()
        x = (up + h).clamp(-1, 1)
        out.append({"size": x.shape[-1], "up": up.cpu(), "residual": h.cpu(), "image": x.cpu()})
    for G, w in zip(Gs, was):
        G.train(w)
    return out


def generate(Gs: list, cfg: LapGANConfig, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Return n finest-level samples (n, C, S, S) in [-1, 1], float32 CPU, repeatable by seed."""
    z = base_z(n, cfg, seed=seed)
    return torch.cat([sample_pyramid(Gs, cfg, z[i:i + batch_size], noise_seed=seed * 7919 + i)[-1]["image"]
                      for i in range(0, n, batch_size)])


@torch.no_grad()
def d_scores(D, images: torch.Tensor, level: int) -> torch.Tensor:
    """Return D's logit (N,) for images at that level's size: level 0 judges the image, level k its
    residual given the upsampled coarser image (higher = D finds it more real)."""
    device = next(D.parameters()).device
    was = D.training
    D.eval()
    x = images.to(device)
    if level == 0:
        out = D(x)
    else:
        up = upsample(lapgan.downsample(x))
        out = D(x - up, up)
    D.train(was)
    return out.float().flatten().cpu()


def images_per_second(states: dict, cfg: LapGANConfig) -> float:
    """Return real images consumed per second of training across the levels."""
    steps = sum(s.step for s in states.values())
    seconds = sum(s.seconds for s in states.values())
    return steps * cfg.batch_size / max(seconds, 1e-9)
