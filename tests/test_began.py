"""BEGAN: networks, equilibrium losses, k_t control, training + resume, interpolation and sliders."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers.core.checkpoint import CheckpointMismatch
from helpers.data.faces import FaceSet
from helpers.eval.metrics import interp_smoothness
from helpers.gan import invert
from helpers.models import began
from helpers.models import began as began_train
from helpers.models.began import ui as began_widgets


def faces(n=64, size=16):
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return FaceSet(imgs, torch.zeros(n, 0), [], "t", "t", "train")


def tiny(**kw):
    base = dict(img_size=16, z_dim=8, hidden_dim=8, g_conv_dim=8, d_conv_dim=8, n_layers=1, batch_size=16, epochs=1,
                epoch_images=32, max_seconds=None, amp=False, ema=0.0)
    return began.config_for("smoke", **{**base, **kw})


# ---- networks --------------------------------------------------------------------------------
@pytest.mark.parametrize("size,blocks", [(8, 1), (16, 2), (32, 3), (64, 4), (128, 5)])
def test_blocks_follow_8_times_2_to_the_n(size, blocks):
    assert began.num_blocks(size) == blocks


@pytest.mark.parametrize("size", [0, 12, 24, 48])
def test_bad_size_says_what_works(size):
    with pytest.raises(ValueError, match=r"8 \* 2\^n"):
        began.num_blocks(size)


@pytest.mark.parametrize("exp,t_conv,tanh,skip", [(False, False, False, False), (True, True, True, True),
                                                 (True, False, False, False), (False, False, False, True)])
def test_shapes_for_every_architecture_option(exp, t_conv, tanh, skip):
    cfg = tiny(img_size=32, exp=exp, t_conv=t_conv, tanh=tanh, n_layers=2, skip=skip)
    D, G = began.build_network(cfg)
    z = torch.rand(3, cfg.z_dim) * 2 - 1
    x = G(z)
    assert x.shape == (3, 3, 32, 32)
    assert D.encode(x).shape == (3, cfg.hidden_dim) and D(x).shape == x.shape
    if tanh:
        assert x.abs().max() <= 1
    n_conv = sum(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    assert n_conv == (2 if t_conv else 0)
    widths = [m.out_channels for m in D.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(widths) == (4 * cfg.d_conv_dim if exp else 3 * cfg.d_conv_dim)  # exponential vs linear growth


def test_skip_connections_carry_the_first_map_to_every_block():
    cfg = tiny(img_size=32, n_layers=1)
    z = torch.rand(4, cfg.z_dim) * 2 - 1
    for skip in (False, True):
        G = began.build_network(replace(cfg, skip=skip))[1]
        ins = [m.in_channels for m in G.features if isinstance(m, torch.nn.Conv2d)]
        assert ins == ([8, 16, 16, 8] if skip else [8, 8, 8, 8])  # blocks 2 and 3 also see h0
        with torch.no_grad():
            G.features[0].weight.zero_()  # the first block forgets z: only a skip can still carry it
            spread = G(z).std(0).mean()
        assert (spread > 1e-4) == skip, (skip, spread)


def test_init_mean_and_std_are_used():
    D, G = began.build_network(tiny(init_mean=0.5, init_std=0.01))
    w = G.fc.weight
    w = w.detach()
    assert abs(float(w.mean()) - 0.5) < 0.01 and abs(float(w.std()) - 0.01) < 0.003
    D, G = began.build_network(tiny(init_std=0.0))  # He: std sqrt(2 / fan_in)
    conv = [m for m in G.modules() if isinstance(m, torch.nn.Conv2d)][0]
    assert abs(float(conv.weight.detach().std()) - math.sqrt(2 / (8 * 9))) < 0.03


# ---- losses and the controller ---------------------------------------------------------------
def test_k_moves_towards_equilibrium_and_stays_in_0_1():
    assert began.update_k(0.5, l_real=1.0, l_fake=0.1, gamma=0.5, lambda_k=0.1) == pytest.approx(0.54)
    assert began.update_k(0.5, l_real=1.0, l_fake=0.9, gamma=0.5, lambda_k=0.1) == pytest.approx(0.46)
    assert began.update_k(0.0, 1.0, 5.0, 0.5, 1.0) == 0.0 and began.update_k(1.0, 1.0, 0.0, 0.5, 1.0) == 1.0


def test_m_global_and_d_loss():
    assert began.m_global(0.2, 0.1, 0.5) == pytest.approx(0.2)  # at equilibrium M = L(x)
    assert began.m_global(0.2, 0.3, 0.5) == pytest.approx(0.4)
    assert float(began.d_loss(torch.tensor(1.0), torch.tensor(2.0), 0.25)) == pytest.approx(0.5)
    x = torch.zeros(2, 3, 4, 4)
    assert float(began.recon_loss(x, x + 0.5)) == pytest.approx(0.5)


@pytest.mark.parametrize("init_std", [0.02, 0.0])  # the demo's init and He (smoke)
def test_the_autoencoder_learns_on_a_tiny_batch(init_std):
    torch.manual_seed(0)
    D, _ = began.build_network(tiny(init_std=init_std))
    x = torch.rand(4, 3, 16, 16) * 2 - 1  # 4 images: an 8-d bottleneck can memorise them
    opt = torch.optim.Adam(D.parameters(), 3e-3)
    first = float(began.recon_loss(x, D(x).detach()))
    for _ in range(200):
        loss = began.recon_loss(x, D(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Better than the trivial all-zero reconstruction (which scores mean |x|), not just than the start.
    assert float(loss.detach()) < 0.8 * min(first, float(x.abs().mean()))


# ---- training, checkpoints, resume -----------------------------------------------------------
def _trainer(path, cfg=None, **kw):
    cfg = cfg or tiny()
    return began_train.build_trainer(cfg, faces(), torch.device("cpu"), path, live=False, progress=False, **kw)


def test_training_logs_k_and_m_and_keeps_best_and_periodic_checkpoints(tmp_path):
    cfg = tiny(epochs=4, lr_decay_every=3, lr_decay=0.5, lr_min=4e-4, lr=1e-3, lambda_k=0.1, keep_every=1,
               k0=0.5)
    trainer, nets = _trainer(tmp_path, cfg, epoch_end_fn=began_train.epoch_tracker(z_dim=cfg.z_dim),
                             keep_best={"m_global": "min"})
    st = trainer.fit(cfg.epochs)
    assert trainer.per_epoch == 2 and st.epoch == 4 and st.step == 8  # epochs of 32 images, batch 16
    for key in ("l_real", "l_fake", "k", "m_global", "lr"):
        assert all(math.isfinite(v) for v in st.history[key]), key
    assert all(0 <= v <= 1 for v in st.history["k"]) and float(nets["eq"].k) != 0.5  # the controller moved k
    assert min(st.history["lr"]) == pytest.approx(4e-4) and st.history["lr"][0] == pytest.approx(1e-3)
    assert (tmp_path / "best_m_global.pt").is_file() and (tmp_path / "epoch_0002.pt").is_file()
    assert st.best["m_global"] == min(m["m_global"] for m in st.epoch_metrics)
    assert len(st.samples) == 4 and st.samples[0].shape == (16, 3, 16, 16)


def test_resume_reaches_the_same_weights_and_k(tmp_path):
    cfg = tiny(epochs=3, ema=0.9, lambda_k=0.1, k0=0.5)

    def run(path, epochs):
        torch.manual_seed(0)
        t, nets = _trainer(path, cfg)
        t.fit(epochs)
        return nets

    straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    resumed = run(tmp_path / "b", 3)
    assert float(straight["eq"].k) != 0.5
    for k in ("D", "G", "eq", "G_ema"):
        for p, q in zip(straight[k].state_dict().values(), resumed[k].state_dict().values()):
            assert torch.equal(p, q), k


def test_checkpoint_of_another_config_is_refused(tmp_path):
    t, _ = _trainer(tmp_path)
    t.fit(1)
    other, _ = _trainer(tmp_path, tiny(hidden_dim=16))
    with pytest.raises(CheckpointMismatch, match="hidden_dim"):
        other.fit(2)


def test_the_decay_factor_is_not_gamma(tmp_path):
    cfg = tiny(gamma=0.9, lr_decay=0.1, lr_decay_every=1, lr_min=0.0, lr=1e-3)
    t, nets = _trainer(tmp_path, cfg)
    t.fit(1)
    assert t.optimizers["d"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.1 ** 1)  # decayed once, by 0.1
    assert t.optimizers["g"].param_groups[0]["lr"] == t.optimizers["d"].param_groups[0]["lr"]


def test_config_flags_are_booleans():
    for name in ("smoke", "demo", "full"):
        cfg = began.config_for(name)
        assert all(isinstance(getattr(cfg, f), bool) for f in ("exp", "t_conv", "tanh", "skip", "amp"))
    full = began.config_for("full")
    assert (full.img_size, full.batch_size, full.gamma, full.lambda_k, full.lr) == (64, 16, 0.5, 1e-3, 1e-4)


# ---- interpolation ---------------------------------------------------------------------------
def test_smoothness_of_an_even_path_is_one_fifteenth():
    f = torch.linspace(0, 1, 16)[:, None] * torch.tensor([3.0, -4.0])
    assert interp_smoothness(f) == pytest.approx(1 / 15)
    jumpy = torch.cat([torch.zeros(8, 2), torch.ones(8, 2)])
    assert interp_smoothness(jumpy) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="identical features"):
        interp_smoothness(torch.zeros(16, 2))
    with pytest.raises(ValueError, match="F >= 3"):
        interp_smoothness(torch.zeros(2, 2))


class PixelOracle:
    """Features = the mean colour per channel (enough to see a path move)."""

    attr_names = []

    def features(self, x):
        return x.float().mean(dim=(2, 3))


def _pools(G, D, cfg, n=4, steps=30):
    torch.manual_seed(0)
    real = torch.rand(n, 3, cfg.img_size, cfg.img_size) * 2 - 1
    return began_widgets.make_pools(G, D, torch.rand(n, cfg.z_dim) * 2 - 1, real, invert_steps=steps)


def test_inversion_lowers_the_reconstruction_error():
    torch.manual_seed(0)
    cfg = tiny()
    _, G = began.build_network(cfg)
    target = G(torch.rand(3, cfg.z_dim) * 2 - 1).detach()
    z0 = torch.rand(3, cfg.z_dim, generator=torch.Generator().manual_seed(1)) * 0.2 - 0.1
    _, err0 = invert(G, target, z0, steps=0, kind="l1", clamp=1.0)
    z, err = invert(G, target, z0, steps=100, kind="l1", clamp=1.0)
    assert z.shape == (3, cfg.z_dim) and z.abs().max() <= 1 and (err < 0.5 * err0).all()
    assert all(p.requires_grad for p in G.parameters())  # G is left trainable


def test_endpoint_psnr_rises_when_the_inversion_reaches_the_photos():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)
    far = began_widgets.endpoint_psnr(G, D, pools)
    assert set(far) == set(began_widgets.REAL_FACE_METHODS)
    reachable = began_widgets.make_pools(G, D, pools.z, G(pools.z).detach().clamp(-1, 1), invert_steps=0)
    reachable.z_inv = pools.z  # the photos are G's own faces: their latents reach them exactly
    assert began_widgets.endpoint_psnr(G, D, reachable)["inversion"] > far["inversion"] + 20


def test_map_inversion_reaches_further_than_the_latent_one():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)  # random "photos": out of reach of an untrained G's 8 latents
    assert pools.m_inv.shape == (4, cfg.g_conv_dim * 64)
    assert (pools.map_err <= pools.inv_err + 1e-6).all() and pools.map_err.mean() < 0.9 * pools.inv_err.mean()
    ends = began_widgets.endpoint_psnr(G, D, pools)
    assert ends["map inversion"] > ends["inversion"]
    start = began_widgets.frames("map inversion", G, D, pools, 0, 1, [0.0])[0]
    assert torch.allclose(start, G.from_map(pools.m_inv[:1])[0].detach(), atol=1e-5)  # the path starts at the inverted map


class LinearDecoder(torch.nn.Module):
    """A decoder whose image is linear in its map: every path through it is an exact cross-fade."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def first_map(self, z):
        return z.repeat(1, 96)[:, :768]

    def from_map(self, m):
        return m.view(-1, 3, 16, 16)

    def forward(self, z):
        return self.from_map(self.first_map(z))


def test_crossfade_psnr_tells_a_blend_from_a_path():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)
    pairs = [(0, 1), (2, 3)]
    linear = replace(pools, m_inv=torch.rand(4, 768) * 2 - 1)
    fade = began_widgets.crossfade_psnr(LinearDecoder(), D, linear, pairs)
    assert set(fade) == set(began_widgets.REAL_FACE_METHODS) and fade["map inversion"] > 60  # a mere blend
    assert began_widgets.crossfade_psnr(G, D, pools, pairs)["D-autoencoder"] < 60  # ELUs bend the path


def test_every_method_interpolates_between_its_endpoints():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)
    for m in began_widgets.METHODS:
        fr = began_widgets.frames(m, G, D, pools, 0, 1, torch.linspace(0, 1, 16))
        assert fr.shape == (16, 3, 16, 16)
        assert not torch.allclose(fr[0], fr[-1])
        assert interp_smoothness(PixelOracle().features(fr)) < 0.5, m
    with pytest.raises(ValueError, match="use one of"):
        began_widgets.frames("nearest", G, D, pools, 0, 1, [0.5])
    s = began_widgets.smoothness_by_method(PixelOracle(), G, D, pools, [(0, 1), (2, 3)])
    assert set(s) == set(began_widgets.METHODS)


def test_each_slider_button_and_switch_changes_the_picture():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)
    box = began_widgets.interpolation_explorer(G, D, pools)
    c = box.controls
    for name, value in (("t", 0.0), ("a", 2), ("b", 3), ("method", "D-autoencoder"), ("method", "inversion"),
                        ("method", "map inversion"), ("method", "latent lerp"), ("t", 1.0)):
        before, text = box.image.value, box.readout.value
        c[name].value = value
        assert box.image.value != before and box.readout.value != text, (name, value)
    before = (c["a"].value, c["b"].value)
    for _ in range(5):
        picture = box.image.value
        box.buttons["new pair"].click()
        if (c["a"].value, c["b"].value) != before:
            break
    assert (c["a"].value, c["b"].value) != before and c["a"].value != c["b"].value
    assert box.image.value != picture  # the new pair is drawn


def test_strip_shows_real_faces_for_real_face_methods():
    cfg = tiny()
    D, G = began.build_network(cfg)
    pools = _pools(G, D, cfg)
    latent = began_widgets.render_strip("latent slerp", G, D, pools, 0, 1, steps=6)
    real = began_widgets.render_strip("D-autoencoder", G, D, pools, 0, 1, steps=6)
    assert latent.dtype == np.uint8 and real.shape[1] > latent.shape[1]  # two extra faces
