"""Training Fader Networks (notebook 02): the losses, the step (official train.py), the trainer."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ...core import distributed, published
from ...core.modules import adam, frozen
from ...core.train import Trainer
from ...data.faces import to_range
from .config import FaderConfig
from .nets import build_networks, flip_one

def parts(cfg) -> dict:
    """Return the trainers a full run has, {name: build_trainer keyword arguments}: the main model
    (the ablations are the same trainer with other configs)."""
    return {"fader": {}}


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return the scalar mean squared error ||x_hat - x||^2 / N (fp32), paper eq. 1 (official: mean)."""
    return F.mse_loss(x_hat.float(), x.float())


def class_weights(y: torch.Tensor, pos_rate: torch.Tensor | None) -> torch.Tensor | None:
    """Return per-entry weights (B, n_attr) that give each attribute's two classes equal total weight
    (0.5 / rate for the positives, 0.5 / (1 - rate) for the negatives), or None when pos_rate is None.

    pos_rate: (n_attr,) fraction of training faces with each attribute (FaceSet.attrs.mean(0))."""
    if pos_rate is None:
        return None
    rate = pos_rate.to(y.device).float().clamp(0.01, 0.99)
    return torch.where(y > 0.5, 0.5 / rate, 0.5 / (1 - rate))


def discriminator_loss(logits: torch.Tensor, y: torch.Tensor, pos_rate: torch.Tensor | None = None) -> torch.Tensor:
    """Return the scalar -log P(y | z) averaged over attributes and batch (paper eq. 2).

    logits: (B, n_attr) from D; y: (B, n_attr) in {0, 1}. One logit per binary attribute is the
    official two-way softmax with the first logit fixed at 0. pos_rate (n_attr,): weigh the classes
    equally (class_weights), so a rare attribute counts as much as a common one.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), y.float(), weight=class_weights(y, pos_rate))


def adversarial_loss(logits: torch.Tensor, y: torch.Tensor, pos_rate: torch.Tensor | None = None) -> torch.Tensor:
    """Return the encoder's scalar loss -log P(1 - y | E(x)): fool D into reading the flipped
    attributes (paper eq. 3; for binary attributes the official 'random other class' is 1 - y),
    weighted by the true classes as discriminator_loss is."""
    return F.binary_cross_entropy_with_logits(logits.float(), 1 - y.float(), weight=class_weights(y, pos_rate))


def lambda_at(cfg: FaderConfig, step: int) -> float:
    """Return lambda_E at a step: linear from 0 to cfg.lambda_lat over cfg.lambda_schedule steps."""
    if cfg.lambda_schedule <= 0:
        return cfg.lambda_lat
    return cfg.lambda_lat * min(1.0, step / cfg.lambda_schedule)


def make_step(E, G, D, ae_opt, dis_opt, cfg: FaderConfig, pos_rate: torch.Tensor | None = None):
    """Return step(batch, state) -> logs: one D update on E(x).detach(), then one E+G update on
    reconstruction + lambda_E(step) * adversarial loss, both gradient-clipped (official train.py).

    One encoder pass serves both updates (the official code draws a second batch for D).
    batch = (x (B, C, S, S) in [-1, 1], y (B, n_attr) in {0, 1}). pos_rate (n_attr,): the training
    set's attribute rates, for class-balanced D and E losses (cfg.balance).
    """
    ae_params = list(E.parameters()) + list(G.parameters())

    def step(batch, state):
        x, y = batch
        z = E(x)  # (B, C_z, s, s)
        D.train()
        d_loss = discriminator_loss(D(z.detach()), y, pos_rate)
        dis_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        distributed.average_gradients(dis_opt)  # several processes: the global batch's gradient is clipped
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(D.parameters(), cfg.clip_grad)
        dis_opt.step()
        rec = reconstruction_loss(G(z, y), x)
        lam = lambda_at(cfg, state.step)
        D.eval()  # no dropout when it judges E (official autoencoder_step)
        with frozen(D):  # the autoencoder's update needs D's input gradient only
            adv = adversarial_loss(D(z), y, pos_rate)
        ae_opt.zero_grad(set_to_none=True)
        (rec + lam * adv).backward()
        distributed.average_gradients(ae_opt)
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(ae_params, cfg.clip_grad)
        ae_opt.step()
        D.train()
        return {"rec_loss": rec.detach(), "d_loss": d_loss.detach(), "adv_loss": adv.detach(), "lambda": lam}

    return step


def uses_channels_last(cfg: FaderConfig, device) -> bool:
    """True when channels_last pays: bf16 on CUDA (on a CPU, fp32 in the default layout is faster
    for these small maps: docs/experiments.md, Fader)."""
    return cfg.amp and torch.device(device).type == "cuda"


def build_trainer(cfg: FaderConfig, faces, device, ckpt_dir, *, sample_faces=None, seed: int = 0, **trainer_kw):
    """Return (trainer, nets) for cfg on a FaceSet: nets = {'E', 'G', 'D'} on device.

    The faces' columns cfg.attrs are the decoder's attributes (a face set without one of them is
    refused, naming those it has). sample_faces: a few faces (default: the first 8 training ones);
    after each epoch the trainer stores their reconstruction and one row per attribute with that
    attribute flipped. The config (attrs included) is saved in every checkpoint, so a checkpoint of
    another attribute set is refused (CheckpointMismatch).
    """
    faces = faces.select_attrs(list(cfg.attrs)).head(cfg.max_images)
    pos_rate = faces.attrs.float().mean(0) if cfg.balance else None  # the whole set's rates: same on every rank
    nets = build_networks(cfg, faces.channels)
    E, G, D = nets["E"], nets["G"], nets["D"]
    ae_opt = adam(list(E.parameters()) + list(G.parameters()), cfg.lr, (cfg.beta1, cfg.beta2))
    dis_opt = adam(D.parameters(), cfg.lr, (cfg.beta1, cfg.beta2))
    shown = (faces if sample_faces is None else sample_faces).select_attrs(list(cfg.attrs))
    sx, sy = to_range(shown.images[:8]).to(device), shown.attrs[:8].float().to(device)

    def sample_fn(m):
        z = m["E"](sx)
        return torch.cat([sx, m["G"](z, sy)] + [m["G"](z, flip_one(sy, j)) for j in range(len(cfg.attrs))])

    trainer_kw.setdefault("keep_every", cfg.keep_every)
    trainer = Trainer("fader", modules=nets, optimizers={"ae": ae_opt, "dis": dis_opt},
                      step_fn=make_step(E, G, D, ae_opt, dis_opt, cfg, pos_rate), faces=faces, batch_size=cfg.batch_size,
                      epoch_images=cfg.epoch_images, flip=cfg.flip, seed=seed, config=cfg, device=device,
                      ckpt_dir=ckpt_dir, channels_last=uses_channels_last(cfg, device), amp=cfg.amp,
                      sample_fn=sample_fn, **trainer_kw)
    return trainer, trainer.modules


def train_run(cfg: FaderConfig, faces, valid, oracle, device, ckpt_dir, seconds: float | None, weights=None,
              **trainer_kw):
    """Return (trainer, nets, state) after training cfg on faces for `seconds` of training in all
    (cumulative: calling again with more seconds continues from last.pt), selecting on `valid`;
    with a published set's `weights` (helpers.core.published), its trained model instead."""
    from .evaluate import KEEP_BEST, val_tracker

    trainer, nets = build_trainer(cfg, faces, device, ckpt_dir, sample_faces=valid, keep_best=KEEP_BEST,
                                  epoch_end_fn=val_tracker(oracle, valid, cfg.val_images), **trainer_kw)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    state = published.fit(trainer, weights, cfg.epochs, max_seconds=seconds)
    if weights is not None:  # a lean set (published.LEAN) ships no latent discriminator: none is used
        nets = {k: m for k, m in nets.items() if k in weights.shipped(trainer.name)}
    print(f"{trainer.ckpt_dir.name if trainer.ckpt_dir else 'fader'}: {state.stopped}, {state.epoch} epochs "
          f"+ {state.batch} batches, {state.step} steps, {state.seconds:.0f} s of training "
          f"({time.perf_counter() - t0:.0f} s wall this call)")
    return trainer, nets, state
