"""LAPGAN: the pyramid, the networks, the training step and options, resume, sampling, sliders."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers.core import checkpoint
from helpers.data import DataError
from helpers.data.faces import FaceSet
from helpers.models import lapgan
from helpers.models import lapgan as LT
from helpers.models.lapgan import ui as LW


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny nets run fastest on one thread (and stay fast when other jobs share the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(**kw):
    return lapgan.config_for("smoke", **{"max_seconds": None, "epochs": 1, "epoch_images": 64,
                                         "batch_size": 16, "d_dropout": 0.0, **kw})


def faces(n=48, size=32, channels=3):
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    return FaceSet(imgs, torch.zeros(n, 0), [], "t", "t", "train")


# ---- the pyramid ---------------------------------------------------------------------------
def test_pyramid_reconstructs_exactly_and_residuals_are_band_pass():
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    coarse, res = lapgan.laplacian_pyramid(x, 16)
    assert coarse.shape == (4, 3, 16, 16) and [r.shape[-1] for r in res] == [32, 64]
    assert torch.allclose(lapgan.reconstruct(coarse, res), x, atol=1e-5)
    smooth = lapgan.upsample(lapgan.upsample(torch.rand(2, 1, 8, 8)))  # a low-pass image
    assert lapgan.laplacian_pyramid(smooth, 8)[1][-1].abs().mean() < 0.5 * lapgan.laplacian_pyramid(
        torch.rand(2, 1, 32, 32), 8)[1][-1].abs().mean()


def test_level_sizes_and_bad_sizes():
    assert lapgan.level_sizes(16, 64) == [16, 32, 64] and lapgan.config_for("full").sizes == [16, 32, 64]
    with pytest.raises(ValueError, match="power of two"):
        lapgan.level_sizes(16, 48)
    with pytest.raises(ValueError, match="smaller than base_size"):
        lapgan.level_sizes(32, 16)


# ---- networks ------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("base_arch", ["fc", "dcgan"])
def test_networks_shapes_and_ranges(channels, base_arch):
    cfg = tiny(img_size=64, base_arch=base_arch)
    D0, G0 = lapgan.build_level(cfg, 0, channels).values()
    x = G0(torch.rand(5, cfg.z_dim) * 2 - 1)
    assert x.shape == (5, channels, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert D0(x).shape == (5, 1)
    for level, size in ((1, 32), (2, 64)):
        D, G = lapgan.build_level(cfg, level, channels).values()
        up = torch.rand(5, channels, size, size)
        h = G(up, LT.level_noise(5, cfg, size))
        assert h.shape == up.shape and h.min() < 0 < h.max()  # a residual takes both signs
        assert D(h, up).shape == (5, 1)
    with pytest.raises(ValueError, match="levels 0..2"):
        lapgan.build_level(cfg, 3, channels)


def test_base_arch_picks_the_base_networks():
    D, G = lapgan.build_level(tiny(base_arch="dcgan", base_conv_dim=8), 0, 3).values()
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())
    assert not any(isinstance(m, torch.nn.Conv2d) for m in lapgan.build_level(tiny(base_arch="fc"), 0, 3)["G"].modules())
    with pytest.raises(ValueError, match="base_arch='mlp'"):
        lapgan.build_level(tiny(base_arch="mlp"), 0, 3)


def test_full_preset_has_the_original_sizes():
    cfg = lapgan.config_for("full")
    D, G = lapgan.build_level(cfg, 0, 3).values()
    assert G.net[0].out_features == 2048 and isinstance(G.net[1], torch.nn.PReLU)
    convs = [m.out_channels for m in D.features if isinstance(m, torch.nn.Conv2d)]
    assert convs == [128, 128, 512, 1024] and D.fc[0].out_features == 1024
    assert D.dense[0].in_features == 3 * 16 * 16  # the dense branch reads the pixels


# ---- training pieces -----------------------------------------------------------------------
def test_discriminator_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = tiny(g_iters=0, d_clamp=0.0, d_l2=0.0, lr_d=1e-3)
    D, G = lapgan.build_level(cfg, 1, 3).values()
    step = LT.make_step(1, D, G, None, LT.make_optimizer(D.parameters(), cfg, cfg.lr_d),
                        LT.make_optimizer(G.parameters(), cfg, cfg.lr_g), cfg)
    batch = (torch.rand(16, 3, 32, 32) * 2 - 1,)
    losses = [float(step(batch, None)["d_loss"]) for _ in range(40)]
    assert losses[-1] < 0.5 * losses[0]


def test_gradient_penalties_and_clamping():
    net = torch.nn.Linear(2, 1, bias=False)
    net.weight.data = torch.tensor([[2.0, -3.0]])
    net.weight.grad = torch.tensor([[10.0, 0.0]])
    LT.regularise_gradients(net, l1=0.5, l2=0.1, clamp=1.0)
    assert torch.allclose(net.weight.grad, torch.tensor([[1.0, -0.8]]))  # 10.7 clamped; 0 - 0.5 - 0.3


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD),
                                       ("adagrad", torch.optim.Adagrad)])
def test_optimiser_choice(name, cls):
    opt = LT.make_optimizer(torch.nn.Linear(2, 2).parameters(), tiny(optimizer=name, momentum=0.9), 0.1)
    assert isinstance(opt, cls)
    with pytest.raises(ValueError, match="'adam', 'sgd' or 'adagrad'"):
        LT.make_optimizer(torch.nn.Linear(2, 2).parameters(), tiny(optimizer="rmsprop"), 0.1)


def test_an_epoch_holds_epoch_images_over_any_number_of_faces(tmp_path):
    t, _ = LT.build_trainer(tiny(epoch_images=40, batch_size=8), faces(20), "cpu", None, live=False, progress=False)
    assert t.per_epoch == 5 and t.fit(1).step == 5  # two passes over 20 faces make one epoch
    first = [x for x, _ in (next(t.loader.stream(k)) for k in range(5))]
    assert torch.equal(first[3], next(t.loader.stream(3))[0])  # replays from any batch
    assert first[0].min() >= -1 and first[0].max() <= 1
    with pytest.raises(DataError, match="lower batch_size"):
        LT.build_trainer(tiny(batch_size=32), faces(20), "cpu", None)


def test_a_batch_norm_base_average_gets_statistics_of_its_own():
    t, nets = LT.build_trainer(tiny(base_arch="dcgan", base_conv_dim=8, ema=0.9, epoch_images=32), faces(), "cpu",
                               None, level=0, live=False, progress=False)
    t.fit(1)
    bn = lambda m: next(x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))  # noqa: E731
    assert not torch.allclose(bn(nets["G_ema"]).running_mean, bn(nets["G"]).running_mean)  # recomputed, not copied
    level1 = LT.build_trainer(tiny(base_arch="dcgan", ema=0.9), faces(), "cpu", None, level=1, live=False)[0]
    assert level1.before_eval is None  # the level G has no batch norm to recalibrate


@pytest.mark.parametrize("level", [0, 1])
def test_training_resumes_to_the_same_weights_and_refuses_another_config(tmp_path, level):
    cfg = tiny(diffaugment="color,translation,cutout", ema=0.9, d_iters=2)
    fs = faces()

    def run(path, epochs, c=cfg):
        torch.manual_seed(0)
        t, nets = LT.build_trainer(c, fs, "cpu", path, level=level, live=False, progress=False, log_every=1)
        st = t.fit(epochs)
        return st, nets

    st, straight = run(tmp_path / "a", 2)
    assert st.step == 8 and all(math.isfinite(v) for v in st.history["d_loss"] + st.history["g_loss"])
    assert st.samples[-1].shape == (16, 3, 16 * (level + 1), 16 * (level + 1))
    run(tmp_path / "b", 1)
    _, resumed = run(tmp_path / "b", 2)
    for k in ("D", "G", "G_ema"):
        for p, q in zip(straight[k].state_dict().values(), resumed[k].state_dict().values()):
            assert torch.equal(p, q), k
    with pytest.raises(checkpoint.CheckpointMismatch, match="level_g_conv_dims|d_conv_dims"):
        run(tmp_path / "b", 3, replace(cfg, level_g_conv_dims=(8, 8), d_conv_dims=(8, 8, 8, 8)))


def test_faces_of_the_wrong_size_are_refused(tmp_path):
    with pytest.raises(ValueError, match="load them at that size"):
        LT.build_trainer(tiny(), faces(size=16), "cpu", tmp_path, level=0)


def test_two_level_pyramid_trains_and_samples_grayscale(tmp_path):
    torch.manual_seed(0)
    cfg = tiny(img_size=64, max_seconds=3.0, epoch_images=32)
    trainers, Gs, Ds = LT.train_pyramid(cfg, faces(size=64, channels=1), "cpu", tmp_path, live=False, progress=False)
    states = {k: t.state for k, t in trainers.items()}
    assert list(states) == ["base16", "level32", "level64"] and all(s.step > 0 for s in states.values())
    pyr = LT.sample_pyramid(Gs, cfg, LT.base_z(3, cfg, seed=1))
    assert [p["size"] for p in pyr] == [16, 32, 64]
    for p in pyr[1:]:
        assert torch.allclose(p["image"], (p["up"] + p["residual"]).clamp(-1, 1))
        assert p["image"].shape == (3, 1, p["size"], p["size"])
    assert torch.equal(LT.generate(Gs, cfg, 5, seed=2), LT.generate(Gs, cfg, 5, seed=2))  # repeatable by seed
    assert not torch.allclose(LT.generate(Gs, cfg, 5, seed=2), LT.generate(Gs, cfg, 5, seed=3))  # and seeds differ
    assert LT.d_scores(Ds[2], pyr[2]["image"], 2).shape == (3,)


# ---- pictures and sliders ------------------------------------------------------------------
def toy_pyramid(seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    up = lapgan.upsample(base)
    h = (torch.rand(4, 3, 16, 16, generator=g) - 0.5) * 0.4
    return [{"size": 8, "image": base}, {"size": 16, "up": up, "residual": h, "image": (up + h).clamp(-1, 1)}]


def test_render_pyramid_changes_with_level_and_residuals():
    pyr = toy_pyramid()
    a, b, c = (LW.render_pyramid(pyr, 1, True), LW.render_pyramid(pyr, 1, False), LW.render_pyramid(pyr, 0))
    assert a.dtype == np.uint8 and a.shape[1] > b.shape[1] > c.shape[1]  # 4, 3 and 1 columns
    assert LW.pyramid_columns(pyr, 1)[1] == ["base 8px", "upsampled 16px", "residual 16px", "refined 16px"]
    with pytest.raises(ValueError, match="levels 0..1"):
        LW.render_pyramid(pyr, 2)


def test_ranking_and_neighbours():
    imgs = torch.linspace(-1, 1, 6)[:, None, None, None].expand(6, 1, 4, 4).contiguous()
    pic, scores = LW.render_ranked(imgs, torch.tensor([0.0, 5, 1, 3, 2, 4]), n=2)
    assert list(scores) == [5, 4, 1, 0] and pic.dtype == np.uint8
    ref = ((imgs + 1) * 127.5).round().to(torch.uint8)
    idx, dist = LW.nearest_neighbours(imgs[:2] + 0.01, ref, k=2)
    assert idx[:, 0].tolist() == [0, 1] and (dist[:, 0] < dist[:, 1]).all()
    assert LW.render_neighbours(imgs[:2], ref, k=2).shape[1] > LW.render_neighbours(imgs[:2], ref, k=1).shape[1]


def test_pyramid_explorer_redraws_for_every_control():
    box = LW.pyramid_explorer(toy_pyramid, n_levels=2)
    level, residuals, seed = box.controls["level"], box.controls["residuals"], box.controls["seed"]
    for change in (lambda: setattr(level, "value", 0), lambda: setattr(level, "value", 1),
                   lambda: setattr(residuals, "value", False), lambda: setattr(seed, "value", 5),
                   lambda: box.buttons["resample"].click()):
        before = box.image.value
        change()
        assert box.image.value != before


def test_real_pyramid_in_sample_format():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    pyr = lapgan.pyramid_of(x, 16)
    assert [p["size"] for p in pyr] == [16, 32] and torch.allclose(pyr[1]["image"], x, atol=1e-5)
    assert LW.render_pyramid(pyr, 1).dtype == np.uint8
