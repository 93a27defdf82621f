"""Training BEGAN (notebook 04): the equilibrium step, the trainer, M_global tracking, the gamma runs."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ...core.average import ema_update, make_average
from ...core import distributed
from ...core.checkpoint import load_modules
from ...core.modules import adam
from ...core.train import Trainer
from ...gan import sample_z, sampler
from .config import BEGANConfig
from .nets import Equilibrium, build_network, d_loss, m_global, recon_loss, update_k

def parts(cfg) -> dict:
    """Return the trainers a full run has, {name: build_trainer keyword arguments}: one."""
    return {"began": {}}


def make_step(D, G, G_ema, eq, d_opt, g_opt, cfg: BEGANConfig):
    """Return step(batch, state) -> logs: one simultaneous D and G update, the k_t update and the
    weight average's (G_ema, None for none).

    One pass of D over [real, G(z)] gives L(x) and L(G(z)); D's gradient comes from
    L(x) - k_t L(G(z)), G's from L(G(z)) (section 3.4). The lr is multiplied by lr_decay every
    lr_decay_every steps, never below lr_min. Under torchrun the gradients and the losses that move
    k_t are averaged over processes, so k_t stays the same everywhere (the global batch's).
    """

    def step(batch, state):
        real = batch[0]  # (B, C, H, W) in [-1, 1]
        B = real.shape[0]
        if cfg.lr_decay_every and state.step and state.step % cfg.lr_decay_every == 0:
            for opt in (d_opt, g_opt):
                for group in opt.param_groups:
                    group["lr"] = max(group["lr"] * cfg.lr_decay, cfg.lr_min)
        fake = G(sample_z(B, cfg.z_dim, "uniform", real.device))  # (B, C, H, W)
        recon = D(torch.cat([real, fake]))  # one pass of D over real and fake: (2B, C, H, W)
        l_real, l_fake = recon_loss(real, recon[:B]), recon_loss(fake, recon[B:])
        k = eq.k.item()
        d_params, g_params = list(D.parameters()), list(G.parameters())
        d_grads = torch.autograd.grad(d_loss(l_real, l_fake, k), d_params, retain_graph=True)
        g_grads = torch.autograd.grad(l_fake, g_params)  # L_G = L(G(z)) through the same D pass
        for params, grads in ((d_params, d_grads), (g_params, g_grads)):
            for p, g in zip(params, grads):
                p.grad = g
        distributed.average_gradients(d_opt, g_opt)  # autograd.grad: no backward hook would see these
        d_opt.step()
        g_opt.step()
        if G_ema is not None:
            ema_update(G_ema, G, cfg.ema, step=state.step + 1)
        lr, lf = distributed.losses(l_real, l_fake)
        eq.k.fill_(update_k(k, lr, lf, cfg.gamma, cfg.lambda_k))
        return {"l_real": lr, "l_fake": lf, "k": k, "m_global": m_global(lr, lf, cfg.gamma),
                "lr": d_opt.param_groups[0]["lr"]}

    return step


def build_trainer(cfg: BEGANConfig, faces, device, ckpt_dir, *, fixed_z: torch.Tensor | None = None,
                  seed: int = 0, **trainer_kw):
    """Return (trainer, nets) for cfg on a FaceSet: nets = {'D', 'G', 'eq' (holds k_t)[, 'G_ema']}.

    An epoch is cfg.epoch_images images: samples, M_global tracking and checkpoints come that often.
    """
    D, G = build_network(cfg, channels=faces.channels)
    eq = Equilibrium(cfg.k0)
    d_opt, g_opt = (adam(m.parameters(), cfg.lr, (cfg.beta1, cfg.beta2)) for m in (D, G))
    fixed_z = (sample_z(16, cfg.z_dim, "uniform", seed=0) if fixed_z is None else fixed_z).to(device)
    trainer_kw.setdefault("log_every", cfg.log_every)
    trainer_kw.setdefault("keep_every", cfg.keep_every)
    nets = {"D": D, "G": G, "eq": eq, **({"G_ema": make_average(G)} if cfg.ema else {})}
    trainer = Trainer("began", modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_step(D, G, nets.get("G_ema"), eq, d_opt, g_opt, cfg),
                      faces=faces.head(cfg.max_images), batch_size=cfg.batch_size, epoch_images=cfg.epoch_images,
                      seed=seed, config=cfg, device=device, ckpt_dir=ckpt_dir, channels_last=cfg.amp, amp=cfg.amp,
                      sample_fn=lambda m: sampler(m)(fixed_z), **trainer_kw)
    return trainer, trainer.modules


def epoch_tracker(oracle=None, real: torch.Tensor | None = None, z_dim: int = 64, n: int = 1000):
    """Return epoch_end_fn(trainer) -> {'m_global', 'k'[, 'fd_oracle']} for the epoch just finished.

    m_global is the mean of the logged M_global over that epoch (keep_best={'m_global': 'min'} keeps
    the best-M checkpoint, the paper's model-selection measure); with an oracle, the Fréchet distance
    of n fixed-z samples against n real images is added.
    """
    from ...eval.metrics import fd_tracker

    fd = fd_tracker(oracle, real[:n], sample_z(n, z_dim, "uniform", seed=1), sampler) if oracle is not None else None

    def on_epoch(trainer):
        h = trainer.state.history
        # Points logged during the epoch just finished carry its 0-based index.
        ms = [m for m, e in zip(h.get("m_global", []), h.get("epoch", [])) if e == trainer.state.epoch - 1]
        ms = ms or h.get("m_global", [float("nan")])[-1:]
        out = {"m_global": sum(ms) / len(ms), "k": h["k"][-1] if h.get("k") else float("nan")}
        return {**out, **(fd(trainer) if fd else {})}

    return on_epoch


def fine_tune(cfg: BEGANConfig, nets: dict, faces, device, ckpt_dir, seconds: float, **overrides):
    """Return (state, nets) of a copy of `nets` trained `seconds` more with cfg fields replaced
    (e.g. gamma=0.3): the gamma comparison. A finished run in ckpt_dir is reloaded, not redone."""
    c = replace(cfg, max_seconds=seconds, keep_every=0, **overrides)
    trainer, new = build_trainer(c, faces, device, ckpt_dir, progress=False, live=False)
    if not (Path(ckpt_dir) / "last.pt").is_file():
        for k, m in new.items():
            m.load_state_dict(nets[k].state_dict())
    state = trainer.fit(10 ** 6, max_seconds=seconds)
    return state, new


def load_weights(nets: dict, path) -> int:
    """Load the network weights (only) of checkpoint `path` into nets; return its epoch.

    Used to evaluate the best checkpoint (best_fd_oracle.pt / best_m_global.pt) without
    rewinding the training state.
    """
    return load_modules(path, nets, model="began")["state"]["epoch"]


def samples(nets: dict, cfg: BEGANConfig, n: int, seed: int = 7) -> torch.Tensor:
    """Return n samples (n, C, H, W) in [-1, 1] from the generator, repeatable by seed (clipped: the
    paper's G has a linear output, which can step outside the image range)."""
    from ...gan import generate

    return generate(sampler(nets), sample_z(n, cfg.z_dim, "uniform", seed=seed)).clamp(-1, 1)


def evaluate(nets: dict, cfg: BEGANConfig, judges, test, n: int) -> dict:
    """Return the judges' scores of n samples against n test faces."""
    return judges.generated(samples(nets, cfg, n), test, n)
