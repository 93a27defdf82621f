"""Training BEGAN (notebooks/04_began_interpolation.ipynb): the step, the trainer, M_global tracking.

Networks, losses and the config are in helpers.began; the loop is helpers.train.Trainer.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, replace
from pathlib import Path

import torch

from . import began
from .began import BEGANConfig
from .dcgan_train import ema_update, sample_z
from .train import Trainer, adam


class SlicedLoader:
    """A FaceLoader cut into "epochs" of `images` images, so samples, M_global tracking and
    checkpoints come every `sample_every` images rather than once per pass over a large set.

    Slice e is part e % parts of the base loader's epoch e // parts; the base order depends only
    on (seed, epoch), so resuming at (slice, batch) replays the batches of an uninterrupted run.
    """

    def __init__(self, base, images: int):
        self.base = base
        self.dataset = base.dataset
        # Slices per pass, rounded so that they split the pass evenly (fewer than `parts` batches skipped).
        self.parts = max(1, round(len(base) * base.batch_size / max(images, 1)))
        self.per = max(1, len(base) // self.parts)  # batches per slice
        self.epoch = 0

    def __len__(self) -> int:
        return self.per

    def set_epoch(self, epoch: int) -> None:
        """Choose which slice the next iteration replays."""
        self.epoch = epoch

    def iterate(self, start_batch: int = 0):
        """Yield the batches of the current slice, skipping the first `start_batch`."""
        self.base.set_epoch(self.epoch // self.parts)
        first = (self.epoch % self.parts) * self.per
        for i, batch in enumerate(self.base.iterate(first + start_batch)):
            if start_batch + i >= self.per:
                return
            yield batch

    def __iter__(self):
        yield from self.iterate()
        self.epoch += 1


def make_step(D, G, eq, d_opt, g_opt, cfg: BEGANConfig, device, G_ema=None):
    """Return step(batch, state) -> logs: one simultaneous D and G update and the k_t update.

    One pass of D over [real, G(z)] gives L(x) and L(G(z)); D's gradient comes from
    L(x) - k_t L(G(z)), G's from L(G(z)) (section 3.4). The lr is multiplied by lr_decay every
    lr_decay_every steps, never below lr_min.
    """

    def step(batch, state):
        real = batch[0]  # (B, C, H, W) in [-1, 1]
        B = real.shape[0]
        if cfg.lr_decay_every and state.step and state.step % cfg.lr_decay_every == 0:
            for opt in (d_opt, g_opt):
                for group in opt.param_groups:
                    group["lr"] = max(group["lr"] * cfg.lr_decay, cfg.lr_min)
        z = sample_z(B, cfg.nz, "uniform", device)
        fake = G(z)  # (B, C, H, W)
        both = torch.cat([real, fake])  # one pass of D over real and fake: (2B, C, H, W)
        recon = D(both)
        l_real = began.recon_loss(real, recon[:B])
        l_fake = began.recon_loss(fake, recon[B:])
        k = eq.k.item()
        d_params, g_params = list(D.parameters()), list(G.parameters())
        d_grads = torch.autograd.grad(began.d_loss(l_real, l_fake, k), d_params, retain_graph=True)
        g_grads = torch.autograd.grad(l_fake, g_params)  # L_G = L(G(z)) through the same D pass
        for params, grads in ((d_params, d_grads), (g_params, g_grads)):
            for p, g in zip(params, grads):
                p.grad = g
        d_opt.step()
        g_opt.step()
        lr, lf = l_real.item(), l_fake.item()
        eq.k.fill_(began.update_k(k, lr, lf, cfg.gamma, cfg.lambda_k))
        if G_ema is not None:
            ema_update(G_ema, G, cfg.ema, step=state.step)
        return {"l_real": lr, "l_fake": lf, "k": k, "m_global": began.m_global(lr, lf, cfg.gamma),
                "lr": d_opt.param_groups[0]["lr"]}

    return step


def build_trainer(cfg: BEGANConfig, loader, device, ckpt_dir, fixed_z=None, extra_config: dict | None = None,
                  **trainer_kw):
    """Return (trainer, nets) for cfg: nets = {'D', 'G', 'eq' (holds k_t)[, 'G_ema']} on device.

    loader: a FaceLoader; it is sliced into Trainer epochs of cfg.sample_every images.
    """
    device = torch.device(device)
    D, G = began.build_network(cfg, channels=loader.dataset.channels)
    D, G = D.to(device), G.to(device)
    if cfg.amp:  # channels_last lets oneDNN / cuDNN pick their fastest bf16 convolutions
        D, G = D.to(memory_format=torch.channels_last), G.to(memory_format=torch.channels_last)
    eq = began.Equilibrium(cfg.k0).to(device)
    G_ema = copy.deepcopy(G).eval() if cfg.ema else None
    d_opt = adam(D.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
    g_opt = adam(G.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
    nets = {"D": D, "G": G, "eq": eq}
    if G_ema is not None:
        nets["G_ema"] = G_ema
    if fixed_z is None:
        fixed_z = sample_z(16, cfg.nz, "uniform", seed=0)
    fixed_z = fixed_z.to(device)
    sampler = G_ema if G_ema is not None else G
    trainer_kw.setdefault("log_every", cfg.log_every)
    trainer_kw.setdefault("keep_every", cfg.keep_every)
    trainer = Trainer("began", modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_step(D, G, eq, d_opt, g_opt, cfg, device, G_ema),
                      loader=SlicedLoader(loader, cfg.sample_every),
                      config={**asdict(cfg), **(extra_config or {})}, device=device, ckpt_dir=ckpt_dir,
                      sample_fn=lambda: sampler(fixed_z), amp=cfg.amp, **trainer_kw)
    return trainer, nets


def trainer_epochs(cfg: BEGANConfig, trainer) -> int:
    """Return how many Trainer epochs (sample intervals) make cfg.epochs passes over the data."""
    return math.ceil(cfg.epochs * trainer.loader.parts)


def sampler_of(nets: dict):
    """Return the generator to sample from: the weight average when there is one."""
    return nets.get("G_ema", nets["G"])


def epoch_tracker(oracle=None, real: torch.Tensor | None = None, nz: int = 64, n: int = 1000):
    """Return epoch_end_fn(trainer) -> {'m_global', 'k'[, 'fd_oracle']} for the last sample interval.

    m_global is the mean of the logged M_global since the previous call (keep_best={'m_global':
    'min'} keeps the best-M checkpoint, the paper's model-selection measure); with an oracle,
    the Fréchet distance of n fixed-z samples against n real images is added.
    """
    from .latent import generate
    from .metrics import fd_oracle

    z = sample_z(n, nz, "uniform", seed=1)
    real = real[:n] if real is not None else None

    def on_epoch(trainer):
        h = trainer.state.history
        # Points logged during the interval just finished carry its 0-based index.
        ms = [m for m, e in zip(h.get("m_global", []), h.get("epoch", [])) if e == trainer.state.epoch - 1]
        ms = ms or h.get("m_global", [float("nan")])[-1:]
        out = {"m_global": sum(ms) / len(ms), "k": h["k"][-1] if h.get("k") else float("nan")}
        if oracle is not None and real is not None:
            out["fd_oracle"] = fd_oracle(oracle, generate(sampler_of(trainer.modules), z), real)
        return out

    return on_epoch


def history_figure(state, floor: float | None = None):
    """Draw L(x), L(G(z)), M_global and k_t against steps, and the per-interval FD; return the figure."""
    import matplotlib.pyplot as plt

    from .viz import plot_history, plot_metric

    has_fd = bool(state.epoch_metrics) and "fd_oracle" in state.epoch_metrics[0]
    fig, axes = plt.subplots(1, 3 if has_fd else 2, figsize=(15 if has_fd else 10, 3.2))
    plot_history(state.history, keys=["m_global", "l_real", "l_fake"], ax=axes[0], title="convergence M_global")
    plot_history(state.history, keys=["k"], ax=axes[1], title="control variable k_t", window=1)
    if has_fd:
        plot_metric(state.epoch_metrics, "fd_oracle", floor=floor, ax=axes[2], title="fd_oracle per interval")
    fig.tight_layout()
    return fig


def fine_tune(cfg: BEGANConfig, nets: dict, loader, device, ckpt_dir, seconds: float,
              extra_config: dict | None = None, **overrides):
    """Return (state, nets) of a copy of `nets` trained `seconds` more with cfg fields replaced
    (e.g. gamma=0.3): the gamma comparison. A finished run in ckpt_dir is reloaded, not redone."""
    c = replace(cfg, max_seconds=seconds, keep_every=0, **overrides)
    trainer, new = build_trainer(c, loader, device, ckpt_dir, extra_config=extra_config, progress=False,
                                 live=False)
    if not (Path(ckpt_dir) / "last.pt").is_file():
        for k, m in new.items():
            m.load_state_dict(nets[k].state_dict())
    state = trainer.fit(10 ** 6, max_seconds=seconds)
    return state, new


def load_weights(nets: dict, path) -> int:
    """Load the network weights (only) of checkpoint `path` into nets; return its epoch (interval).

    Used to evaluate the best checkpoint (best_fd_oracle.pt / best_m_global.pt) without
    rewinding the training state.
    """
    from .checkpoint import load_modules

    return load_modules(path, nets, model="began")["state"]["epoch"]
