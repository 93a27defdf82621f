"""Training the SMiLE converter (notebook 03): the ACGAN / WACGAN step, the encoder step, their trainers."""
from __future__ import annotations

import torch

from ...core import distributed
from ...core.average import ema_update, make_average
from ...core.modules import adam, frozen
from ...core.train import Trainer
from ...gan import fake_loss, gradient_penalty, real_loss, sample_z, sampler, wgan_d_loss, wgan_g_loss
from .config import EncoderConfig, GANConfig, SmileConfig
from .nets import Critic, Encoder, build_gan, class_loss, clip_weights, critic_schedule, feature_matching
from .nets import image_loss, prior_penalty

GAN_PARTS = ("acgan", "wacgan")


def parts(cfg) -> dict:
    """Return the trainers a run starts with, {name: build_trainer keyword arguments}: the config's GANs
    (the encoders need a trained G: build_encoder_trainer)."""
    return {p: {"part": p} for p in trained_gans(cfg)}


def trained_gans(cfg, weights=None) -> tuple:
    """Return the GANs notebook 03 has: cfg.gans, less those an open published set does not ship."""
    unknown = [g for g in cfg.gans if g not in GAN_PARTS]
    if "acgan" not in cfg.gans or unknown:
        raise ValueError(f"gans={cfg.gans!r}: the converter needs 'acgan', and the GANs are {', '.join(GAN_PARTS)}")
    return tuple(g for g in cfg.gans if weights is None or g in weights.payload["parts"])


def _labels(attrs: torch.Tensor, cols: list[int]) -> torch.Tensor:
    return attrs[:, cols].float()  # (B, A)


def make_gan_step(D, G, G_ema, d_opt, g_opt, cfg: GANConfig, cols: list[int]):
    """Return step(batch, state) -> logs: one D/critic update and, when due, one G update and the
    weight average's (G_ema, None for none).

    batch: (x (B, C, H, W) in [-1, 1], attrs (B, all attributes)); `cols` picks the class columns.
    Fake classes are the batch's real labels shuffled, so real and fake share one class marginal.
    """
    if cfg.loss not in ("bce", "wgan-clip", "wgan-gp"):
        raise ValueError(f"loss={cfg.loss!r}: use 'bce', 'wgan-clip' or 'wgan-gp'")
    if cfg.fm not in ("none", "l1", "l2"):
        raise ValueError(f"fm={cfg.fm!r}: use 'none', 'l1' or 'l2'")
    wgan = cfg.loss != "bce"
    is_g_step = (critic_schedule(cfg.n_critic, cfg.warmup_critic, cfg.warmup_g_steps, cfg.warmup_every)
                 if wgan else (lambda step: True))
    critic = Critic(D)

    def step(batch, state):
        real, attrs = batch
        c_real = _labels(attrs, cols)  # (B, A)
        c_fake = c_real[torch.randperm(len(c_real), device=c_real.device)]  # (B, A)
        fake = G(sample_z(real.shape[0], cfg.z_dim, "normal", real.device), c_fake)  # (B, C, H, W)
        adv_r, cls_r = D(real)
        adv_f, cls_f = D(fake.detach())
        l_cls = class_loss(cls_r, c_real) + cfg.cls_fake_weight * class_loss(cls_f, c_fake)
        if wgan:
            d_loss = wgan_d_loss(adv_r, adv_f) + cfg.cls_weight * l_cls
            if cfg.loss == "wgan-gp":
                with torch.autocast(real.device.type, enabled=False):  # second-order gradients in fp32
                    d_loss = d_loss + cfg.gp_weight * gradient_penalty(critic, real.float(), fake.detach().float())
        else:
            d_loss = real_loss(adv_r, cfg.smooth) + fake_loss(adv_f) + cfg.cls_weight * l_cls
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        distributed.average_gradients(d_opt)  # several processes: the global batch's gradient
        d_opt.step()
        logs = {"d_loss": d_loss.detach(), "d_cls": l_cls.detach()}
        if cfg.loss == "wgan-clip":
            clip_weights(D, cfg.clip)
        if not is_g_step(state.step):
            return logs
        with frozen(D):  # G's update needs D's input gradient only
            adv_g, cls_g, f_fake = D(fake, with_features=True)
        g_loss = (wgan_g_loss(adv_g) if wgan else real_loss(adv_g)) + cfg.cls_weight * class_loss(cls_g, c_fake)
        if cfg.fm != "none":
            with torch.no_grad():
                f_real = D(real, with_features=True)[2]
            g_loss = g_loss + cfg.fm_weight * feature_matching(f_real, f_fake, cfg.fm)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        distributed.average_gradients(g_opt)
        g_opt.step()
        if G_ema is not None:
            ema_update(G_ema, G, cfg.ema, step=state.step + 1)
        logs["g_loss"] = g_loss.detach()
        return logs

    return step


def fixed_inputs(cfg: GANConfig, n: int = 8, seed: int = 0):
    """Return (z, c) for the sample grid: n latents twice, first row class 0, second row class 1."""
    z = sample_z(n, cfg.z_dim, "normal", seed=seed).repeat(2, 1)  # (2n, z_dim)
    c = torch.cat([torch.zeros(n, len(cfg.attrs)), torch.ones(n, len(cfg.attrs))])  # (2n, A)
    return z, c


def build_gan_trainer(cfg: GANConfig, faces, device, ckpt_dir, name: str | None = None, seed: int = 0,
                      **trainer_kw):
    """Return (trainer, nets) for one conditional GAN: nets = {'D', 'G', 'G_ema'} on device.

    faces: the training FaceSet (its attr_names must include cfg.attrs). name: 'acgan' or 'wacgan'
    (default from cfg.loss), also the checkpoint's model name.
    """
    name = name or ("acgan" if cfg.loss == "bce" else "wacgan")
    cols = [faces.attr_index(a) for a in cfg.attrs]
    nets = build_gan(cfg.z_dim, len(cfg.attrs), cfg.g_conv_dim, cfg.d_conv_dim, img_size=cfg.img_size,
                     channels=faces.channels, d_norm=cfg.d_norm)
    D, G = nets["D"], nets["G"]
    if cfg.loss == "wgan-clip":  # RMSProp: momentum-free, as the clipped WGAN needs (Arjovsky et al. 3)
        d_opt, g_opt = (torch.optim.RMSprop(m.parameters(), lr=cfg.lr) for m in (D, G))
    else:
        d_opt, g_opt = (adam(m.parameters(), cfg.lr, cfg.betas) for m in (D, G))
    if cfg.ema:
        nets["G_ema"] = make_average(G)
    z_fix, c_fix = (t.to(device) for t in fixed_inputs(cfg))
    trainer = Trainer(name, modules=nets, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=make_gan_step(D, G, nets.get("G_ema"), d_opt, g_opt, cfg, cols),
                      faces=faces.head(cfg.max_images), batch_size=cfg.batch_size, epoch_images=cfg.epoch_images,
                      seed=seed, config=cfg, device=device, ckpt_dir=ckpt_dir, channels_last=cfg.amp, amp=cfg.amp,
                      sample_fn=lambda m: sampler(m)(z_fix, c_fix), **trainer_kw)
    return trainer, trainer.modules


def build_trainer(cfg: SmileConfig, faces, device, ckpt_dir, part: str = "acgan", **trainer_kw):
    """Return (trainer, nets) of one of the converter's GANs: part 'acgan' or 'wacgan' (the model contract)."""
    if part not in GAN_PARTS:
        raise ValueError(f"part={part!r}: use one of {', '.join(GAN_PARTS)} (encoders: build_encoder_trainer)")
    return build_gan_trainer(getattr(cfg, part), faces, device, ckpt_dir, name=part, **trainer_kw)


def make_encoder_step(E, G, e_opt, cfg: EncoderConfig, z_dim: int, cols: list[int]):
    """Return step(batch, state) -> logs for E against the frozen G (kept in eval mode).

    Always: x = G(z, c) for z ~ N(0, I), pixel loss between G(E(x), c) and x ('l1'/'l2'), and
    E's class head on x. The fix adds: latent_weight * ||E(x) - z||^2 (latent cycle),
    prior_weight * prior_penalty(E(x)), real_weight * pixel loss on real images with their labels.
    """
    G.requires_grad_(False)

    def step(batch, state):
        real, attrs = batch
        G.eval()
        c_real = _labels(attrs, cols)  # (B, A)
        c = c_real[torch.randperm(len(c_real), device=c_real.device)]  # (B, A)
        z = sample_z(real.shape[0], z_dim, "normal", real.device)  # (B, z_dim)
        with torch.no_grad():
            x = G(z, c)  # (B, C, H, W)
        z_hat, cls = E(x)
        pix = image_loss(G(z_hat, c), x, cfg.loss)
        loss = pix + cfg.cls_weight * class_loss(cls, c)
        logs = {"pixel": pix.detach()}
        if cfg.latent_weight:
            lat = (z_hat.float() - z).pow(2).mean()
            loss = loss + cfg.latent_weight * lat
            logs["latent"] = lat.detach()
        zs = [z_hat]
        if cfg.real_weight:
            z_r, cls_r = E(real)
            pix_r = image_loss(G(z_r, c_real), real, cfg.loss)
            loss = loss + cfg.real_weight * pix_r + cfg.cls_weight * class_loss(cls_r, c_real)
            logs["pixel_real"] = pix_r.detach()
            zs.append(z_r)
        if cfg.prior_weight:
            prior = sum(prior_penalty(zz) for zz in zs)
            loss = loss + cfg.prior_weight * prior
            logs["prior"] = prior.detach()
        e_opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(e_opt)
        e_opt.step()
        logs["e_loss"] = loss.detach()
        return logs

    return step


def build_encoder_trainer(cfg: EncoderConfig, G, gan_cfg: GANConfig, faces, device, ckpt_dir,
                          generator_tag: str = "", seed: int = 0, **trainer_kw):
    """Return (trainer, E): E trained against the frozen G (use the weight average G_ema).

    generator_tag identifies the G (e.g. 'acgan@step 9000'); it is saved in the config, so an
    encoder of another generator is refused on resume (CheckpointMismatch).
    """
    cols = [faces.attr_index(a) for a in gan_cfg.attrs]
    E = Encoder(gan_cfg.z_dim, len(gan_cfg.attrs), cfg.e_conv_dim, img_size=gan_cfg.img_size, channels=faces.channels)
    e_opt = adam(E.parameters(), cfg.lr, (0.9, 0.999))
    extra = {"generator": generator_tag, "z_dim": gan_cfg.z_dim, "attrs": list(gan_cfg.attrs),
             "img_size": gan_cfg.img_size}
    trainer = Trainer("smile_encoder", modules={"E": E}, optimizers={"e": e_opt},
                      step_fn=make_encoder_step(E, G, e_opt, cfg, gan_cfg.z_dim, cols),
                      faces=faces.head(cfg.max_images), batch_size=cfg.batch_size, epoch_images=cfg.epoch_images,
                      seed=seed, config=cfg, extra_config=extra, device=device, ckpt_dir=ckpt_dir,
                      channels_last=cfg.amp, amp=cfg.amp, **trainer_kw)
    return trainer, trainer.modules["E"]
