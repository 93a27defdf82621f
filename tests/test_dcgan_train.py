"""DCGAN training pieces: DiffAugment, latent walks, attribute directions, the step, resume."""
import contextlib
import math

import pytest
import torch

import copy

from helpers import gan
from helpers.core.modules import adam, frozen
from helpers.core.train import TrainState
from helpers.data.faces import FaceSet
from helpers.gan import augment, latent
from helpers.models import dcgan
from helpers.models.dcgan import train as dcgan_train


def faces(n=64, size=16):
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return FaceSet(imgs, torch.zeros(n, 0), [], "t", "t", "train")


# ---- DiffAugment ---------------------------------------------------------------------------
def test_diffaugment_is_differentiable_and_random():
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    y = augment.diff_augment(x * 2 - 1)
    y.sum().backward()
    assert y.shape == x.shape and x.grad is not None and x.grad.abs().sum() > 0
    assert not torch.equal(augment.diff_augment(x.detach()), augment.diff_augment(x.detach()))


def test_translation_moves_content_by_whole_pixels():
    torch.manual_seed(0)
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(16, 1, 1, 1)
    out = augment.translation(x, ratio=0.25)
    shifted = 0
    for o in out:
        nz = o[o != 0]
        assert set(nz.tolist()) <= set(range(64))  # values moved, never blended
        shifted += not torch.equal(o, x[0])
    assert shifted > 0


def test_cutout_zeroes_a_quarter_at_most():
    out = augment.cutout(torch.ones(32, 3, 16, 16), ratio=0.5)
    frac = (out == 0).float().mean(dim=(1, 2, 3))
    assert frac.max() <= 0.25 + 1e-6 and frac.mean() > 0.1


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'blur'"):
        augment.diff_augment(torch.zeros(1, 3, 8, 8), "color,blur")


# ---- latent space --------------------------------------------------------------------------
def test_residual_edit_keeps_the_photo_and_adds_only_the_change():
    torch.manual_seed(0)
    x, recon = torch.rand(2, 3, 8, 8) * 1.6 - 0.8, torch.zeros(2, 3, 8, 8)
    assert torch.equal(latent.residual_edit(x, recon, recon), x)  # no change asked: the photo itself
    edited = recon.clone()
    edited[:, :, 6:] += 0.5  # the edit touches the bottom rows only (a mouth, say)
    out = latent.residual_edit(x, recon, edited)
    assert torch.equal(out[:, :, :6], x[:, :, :6]) and torch.allclose(out[:, :, 6:], (x[:, :, 6:] + 0.5).clamp(-1, 1))
    assert out.abs().max() <= 1
    stronger = latent.residual_edit(x, recon, edited, strength=2.0)  # the change pushed twice as far
    assert torch.equal(stronger[:, :, :6], x[:, :, :6])
    assert torch.allclose(stronger[:, :, 6:], (x[:, :, 6:] + 1.0).clamp(-1, 1))
    with pytest.raises(ValueError, match="one shape"):
        latent.residual_edit(x, recon[:1], recon)


def test_slerp_keeps_the_norm_and_ends_at_the_endpoints():
    z0, z1 = torch.randn(100), torch.randn(100)
    path = latent.interpolate(z0, z1, 9, "slerp")
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    mid = path[4]
    assert mid.norm() > latent.lerp(z0, z1, 0.5).norm()  # lerp cuts through the low-norm middle
    assert abs(mid.norm() - (z0.norm() + z1.norm()) / 2) < 0.1 * z0.norm()


def test_lerp_is_linear():
    z0, z1 = torch.zeros(3), torch.ones(3)
    assert torch.allclose(latent.interpolate(z0, z1, 5, "lerp")[:, 0], torch.linspace(0, 1, 5))


class ToyOracle:
    """Reads attribute 'Bright' as mean pixel > 0: a known ground truth for direction tests."""

    attr_names = ["Bright"]

    def predict(self, x):
        return (x.mean(dim=(1, 2, 3)) > 0).float()[:, None]


class ToyG(torch.nn.Module):
    """G(z) = image whose brightness is z[0] (other coordinates are noise)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return (z[:, :1, None, None] + 0 * self.w).expand(-1, 3, 4, 4).tanh()


def test_attribute_direction_points_along_the_true_axis_and_flips():
    z = torch.rand(2000, 8) * 2 - 1
    dirs = latent.attribute_directions(ToyG(), ToyOracle(), z, ["Bright"])
    d = dirs["Bright"]
    assert d[0] > 0.8 and d[1:].abs().max() < 0.1  # mean difference of U(-1,1) halves is 1
    acc = latent.direction_accuracy(ToyG(), ToyOracle(), z, dirs, strength=3.0)
    assert acc["Bright"] > 0.99
    weak = latent.direction_accuracy(ToyG(), ToyOracle(), z, dirs, strength=0.2)
    assert weak["Bright"] < 0.5  # a small step flips only samples near the boundary


# ---- the DCGAN step and trainer ------------------------------------------------------------
@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge"])
def test_training_runs_and_logs_finite_losses(tmp_path, loss):
    cfg = dcgan.config_for("smoke", img_size=16, loss=loss, diffaugment="color,translation,cutout",
                                 smooth=True, epochs=1, max_seconds=None, lr_schedule="cosine")
    trainer, nets = dcgan.build_trainer(cfg, faces(), torch.device("cpu"), tmp_path, log_every=1, live=False,
                                        progress=False)
    st = trainer.fit(cfg.epochs)
    assert st.stopped == "done" and st.step == 2
    assert all(math.isfinite(v) for v in st.history["d_loss"])
    assert "g_loss" in st.history and len(st.samples) == 1
    assert st.samples[0].shape == (16, 3, 16, 16)


def _step_and_d_grad_counts(cfg):
    torch.manual_seed(0)
    D, G = dcgan.build_network(cfg.d_conv_dim, cfg.g_conv_dim, cfg.z_dim, img_size=cfg.img_size)
    d_opt, g_opt = (adam(m.parameters(), cfg.lr, (cfg.beta1, cfg.beta2)) for m in (D, G))
    calls = {n: 0 for n, _ in D.named_parameters()}
    for n, p in D.named_parameters():
        p.register_hook(lambda g, n=n: calls.__setitem__(n, calls[n] + 1))
    step = dcgan.make_step(D, G, None, d_opt, g_opt, cfg)
    batch = (faces().sample(cfg.batch_size, seed=1), None)
    for i in range(3):
        step(batch, TrainState(step=i))
    return calls, D, G


def test_generator_update_computes_no_discriminator_weight_gradients():
    """D's weight gradients are computed for D's three updates only, never in G's (frozen D)."""
    calls, D, _ = _step_and_d_grad_counts(dcgan.config_for("smoke", img_size=16))
    assert set(calls.values()) == {3}
    assert all(p.requires_grad for p in D.parameters())  # the freeze is undone after each G update


def test_freezing_d_for_the_generator_update_changes_no_weight(monkeypatch):
    cfg = dcgan.config_for("smoke", img_size=16, amp=False)
    _, D, G = _step_and_d_grad_counts(cfg)
    monkeypatch.setattr(dcgan_train, "frozen", lambda *m: contextlib.nullcontext())
    calls, D_ref, G_ref = _step_and_d_grad_counts(cfg)
    assert set(calls.values()) == {6}  # without the freeze, G's updates also reach D's weights
    for a, b in ((D, D_ref), (G, G_ref)):
        for p, q in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_frozen_restores_each_parameter_flag():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    net[1].bias.requires_grad_(False)
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]
    with pytest.raises(RuntimeError), frozen(net):
        raise RuntimeError("inside")
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]


def test_resume_reaches_the_same_weights(tmp_path):
    cfg = dcgan.config_for("smoke", img_size=16, epochs=3, max_seconds=None)
    def run(path, epochs):
        torch.manual_seed(0)
        t, nets = dcgan.build_trainer(cfg, faces(), torch.device("cpu"), path, live=False, progress=False)
        t.fit(epochs)
        return nets
    straight = run(tmp_path / "a", 3)
    run(tmp_path / "b", 1)
    resumed = run(tmp_path / "b", 3)
    for k in ("D", "G", "G_ema"):
        for p, q in zip(straight[k].state_dict().values(), resumed[k].state_dict().values()):
            assert torch.equal(p, q), k


def test_time_stops_resume_to_the_same_weights(tmp_path):
    """A stop mid-epoch recalibrates and saves G_ema's statistics; the resumed run must not drift."""
    cfg = dcgan.config_for("smoke", img_size=16, epochs=2, max_seconds=None, ema_bn_samples=256)
    def build(path):
        torch.manual_seed(0)
        return dcgan.build_trainer(cfg, faces(), torch.device("cpu"), path, live=False, progress=False)
    trainer, straight = build(tmp_path / "a")
    trainer.fit(cfg.epochs)
    for calls in range(1, 20):
        trainer, resumed = build(tmp_path / "b")
        trainer.load()
        if trainer.fit(cfg.epochs, max_seconds=trainer.state.seconds + 1e-9).epoch >= cfg.epochs:
            break
    assert calls > 2  # it stopped mid-epoch and resumed several times
    for k in ("D", "G", "G_ema"):
        for p, q in zip(straight[k].state_dict().values(), resumed[k].state_dict().values()):
            assert torch.equal(p, q), k


def test_ema_follows_the_generator():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    gan.ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)


def test_recalibrated_batchnorm_holds_the_statistics_of_the_averaged_weights():
    torch.manual_seed(0)
    G = dcgan.Generator(z_size=8, conv_dim=8, img_size=16)
    G_ema = copy.deepcopy(G).eval()
    with torch.no_grad():
        for p in G_ema.parameters():
            p.mul_(1.5)  # weights that differ from the network whose statistics were copied
    z_fn = lambda n, g: torch.randn(n, 8, generator=g)  # noqa: E731
    rng = torch.get_rng_state()
    gan.recalibrate_batchnorm(G_ema, z_fn, n=500, batch_size=256)  # two whole batches
    assert torch.equal(rng, torch.get_rng_state())  # the global RNG (and so exact resume) untouched
    assert not G_ema.training and G_ema.stem.norm.momentum == 0.1
    # the stored mean is what the averaged weights produce on those 2 x 256 latents
    g = torch.Generator().manual_seed(0)
    z = torch.cat([z_fn(256, g), z_fn(256, g)])
    pre = G_ema.stem.fc(z).view(512, G_ema.top_channels, 4, 4)
    assert torch.allclose(G_ema.stem.norm.running_mean, pre.mean((0, 2, 3)), atol=1e-4)
    assert not torch.allclose(G.stem.norm.running_mean, G_ema.stem.norm.running_mean, atol=1e-3)
    lin = torch.nn.Linear(2, 2)
    gan.recalibrate_batchnorm(lin, z_fn)  # no batch norm: nothing to do, no error


def test_samples_and_checkpoints_use_the_recalibrated_average(tmp_path):
    cfg = dcgan.config_for("smoke", img_size=16, epochs=1, max_seconds=None, ema_bn_samples=256)
    trainer, nets = dcgan.build_trainer(cfg, faces(), torch.device("cpu"), tmp_path, live=False, progress=False)
    trainer.fit(cfg.epochs)
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["modules"]
    assert not torch.equal(saved["G_ema"]["stem.norm.running_var"], saved["G"]["stem.norm.running_var"])
    assert torch.equal(saved["G_ema"]["stem.norm.running_var"], nets["G_ema"].stem.norm.running_var)
    off = dcgan.config_for("smoke", img_size=16, epochs=1, max_seconds=None, ema_bn_samples=0)
    trainer, nets = dcgan.build_trainer(off, faces(), torch.device("cpu"), tmp_path / "off", live=False,
                                        progress=False)
    trainer.fit(off.epochs)
    assert torch.equal(nets["G_ema"].stem.norm.running_var, nets["G"].stem.norm.running_var)  # copied from G


def test_bad_options_say_what_to_use():
    with pytest.raises(ValueError, match="use one of"):
        dcgan.make_step(None, None, None, None, None, dcgan.config_for("smoke", loss="huber"))
    with pytest.raises(ValueError, match="'uniform' or 'normal'"):
        gan.sample_z(2, 3, "cauchy")
    with pytest.raises(ValueError, match="'none' or 'cosine'"):
        dcgan.build_trainer(dcgan.config_for("smoke", img_size=16, lr_schedule="step"), faces(), "cpu", None)


def test_an_attribute_the_generator_never_shows_is_skipped_and_scores_zero():
    z = torch.rand(500, 8) * 0.5 + 0.5  # every sample bright: no 'without' side
    with pytest.warns(UserWarning, match="skipping Bright"):
        dirs = latent.attribute_directions(ToyG(), ToyOracle(), z, ["Bright"])
    assert "Bright" not in dirs
    acc = latent.direction_accuracy(ToyG(), ToyOracle(), z, dirs, attrs=["Bright"])
    assert acc == {"Bright": 0.0, "mean": 0.0}
