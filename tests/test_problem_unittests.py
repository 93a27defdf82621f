"""The notebook checkers accept the reference implementations and reject broken ones."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
# pytest's default import mode puts tests/ (not the repo root) on sys.path.
sys.path.insert(0, str(ROOT))

import problem_unittests as checks  # noqa: E402  (module import: pytest must not collect test_* here)
from helpers.models import dcgan  # noqa: E402
from helpers.data import scale  # noqa: E402
from helpers.gan import weights_init_normal, weights_init_xavier  # noqa: E402


# --- the references pass, and say so ------------------------------------------------------

@pytest.mark.parametrize("check, args", [
    (checks.test_discriminator, (dcgan.Discriminator,)),
    (checks.test_generator, (dcgan.Generator,)),
    (checks.test_scale, (scale,)),
    (checks.test_weights_init_normal, (weights_init_normal,)),
    (checks.test_losses, (dcgan.real_loss, dcgan.fake_loss)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(check, args, capsys):
    check(*args)
    assert capsys.readouterr().out.strip() == "Tests Passed"


def test_checkers_leave_the_callers_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.test_discriminator(dcgan.Discriminator)
    checks.test_generator(dcgan.Generator)
    checks.test_weights_init_normal(weights_init_normal)
    checks.test_losses(dcgan.real_loss, dcgan.fake_loss)
    assert torch.equal(torch.get_rng_state(), state)


def test_importable_without_pytest(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytest", None)  # makes `import pytest` raise ImportError
    spec = importlib.util.spec_from_file_location("_put_no_pytest", ROOT / "problem_unittests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.pytest is None and callable(module.test_generator)


# --- broken discriminators --------------------------------------------------------------

class PoolingD(nn.Module):
    """Downsamples with max-pooling instead of strided convs."""

    def __init__(self, conv_dim):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, conv_dim, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2),
            nn.Conv2d(conv_dim, conv_dim * 2, 3, padding=1, bias=False), nn.BatchNorm2d(conv_dim * 2),
            nn.LeakyReLU(0.2), nn.MaxPool2d(4))
        self.fc = nn.Linear(conv_dim * 2 * 16, 1)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


class FunctionalPoolingD(dcgan.Discriminator):
    """Hides the pooling in forward(), where no module list shows it."""

    def forward(self, x):
        return super().forward(F.avg_pool2d(F.interpolate(x, scale_factor=2), 2))


class NoBatchNormD(dcgan.Discriminator):
    def __init__(self, conv_dim):
        super().__init__(conv_dim, norm="none")


class SigmoidD(dcgan.Discriminator):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class WrongShapeD(dcgan.Discriminator):
    """Forgets the final linear layer: returns the whole feature vector."""

    def forward(self, x):
        return self.features(x).flatten(1)


class UnusedLayerD(dcgan.Discriminator):
    def __init__(self, conv_dim):
        super().__init__(conv_dim)
        self.extra = nn.Linear(10, 10)  # defined, never called


@pytest.mark.parametrize("broken, why", [
    (PoolingD, "pooling"),
    (FunctionalPoolingD, "pooling"),
    (NoBatchNormD, "batch normalisation"),
    (SigmoidD, "logits"),
    (WrongShapeD, "shape"),
    (UnusedLayerD, "no gradient"),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_discriminator_checker_rejects(broken, why):
    with pytest.raises(AssertionError, match=why):
        checks.test_discriminator(broken)


# --- broken generators -------------------------------------------------------------------

class NoTanhG(dcgan.Generator):
    """The last transposed conv's output goes out raw."""

    def __init__(self, z_size, conv_dim):
        super().__init__(z_size, conv_dim)
        self.features[-1] = nn.Identity()


class IgnoresZG(dcgan.Generator):
    def forward(self, z):
        return super().forward(torch.zeros_like(z))


class WrongSizeG(dcgan.Generator):
    def __init__(self, z_size, conv_dim):
        super().__init__(z_size, conv_dim, img_size=64)


class DetachedG(dcgan.Generator):
    """Cuts the graph after the projection: fc never learns."""

    def forward(self, z):
        x = self.stem.fc(z.flatten(1)).detach().view(-1, self.top_channels, 4, 4)
        return self.features(F.relu(self.stem.norm(x)))


@pytest.mark.parametrize("broken, why", [
    (NoTanhG, r"\[-1, 1\]"),
    (IgnoresZG, "same image"),
    (WrongSizeG, "shape"),
    (DetachedG, "no gradient"),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_generator_checker_rejects(broken, why):
    with pytest.raises(AssertionError, match=why):
        checks.test_generator(broken)


# --- broken scale, init and losses -------------------------------------------------------

def scale_hard_coded(x, feature_range=(-1, 1)):
    return x * 2 - 1


def scale_in_place(x, feature_range=(-1, 1)):
    lo, hi = feature_range
    return x.mul_(hi - lo).add_(lo)


def scale_wrong_formula(x, feature_range=(-1, 1)):
    lo, hi = feature_range
    return x * hi + lo


@pytest.mark.parametrize("broken, why", [
    (scale_hard_coded, "feature_range"),
    (scale_in_place, "in place"),
    (scale_wrong_formula, "should be"),
])
def test_scale_checker_rejects(broken, why):
    with pytest.raises(AssertionError, match=why):
        checks.test_scale(broken)


def init_does_nothing(m):
    pass


def init_std_too_big(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.2)
        nn.init.zeros_(m.bias)


def init_keeps_biases(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)


def init_catches_batchnorm(m):
    """The classic bug: a class-name test that also matches BatchNorm and zero-centres its scale."""
    if hasattr(m, "weight") and m.weight is not None:
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


@pytest.mark.parametrize("broken, why", [
    (init_does_nothing, "std 0.02"),
    (weights_init_xavier, "std 0.02"),
    (init_std_too_big, "std 0.02"),
    (init_keeps_biases, "biases"),
    (init_catches_batchnorm, "BatchNorm"),
], ids=lambda f: getattr(f, "__name__", ""))
def test_weights_init_checker_rejects(broken, why):
    with pytest.raises(AssertionError, match=why):
        checks.test_weights_init_normal(broken)


def real_loss_ignores_smoothing(D_out, smooth=False):
    return dcgan.real_loss(D_out)


def real_loss_without_smooth_arg(D_out):
    return dcgan.real_loss(D_out)


def real_loss_summed(D_out, smooth=False):
    labels = torch.full_like(D_out.float(), 0.9 if smooth else 1.0)
    return F.binary_cross_entropy_with_logits(D_out.float(), labels, reduction="sum")


def real_loss_on_probabilities(D_out, smooth=False):
    """Treats logits as probabilities (BCELoss after a sigmoid that D no longer has)."""
    p = D_out.float().clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, torch.full_like(p, 0.9 if smooth else 1.0))


def real_loss_detached(D_out, smooth=False):
    return dcgan.real_loss(D_out.detach(), smooth)


def fake_loss_swapped(D_out):
    return dcgan.real_loss(D_out)


@pytest.mark.parametrize("real, fake, why", [
    (real_loss_ignores_smoothing, dcgan.fake_loss, "smooth"),
    (real_loss_without_smooth_arg, dcgan.fake_loss, "smooth"),
    (real_loss_summed, dcgan.fake_loss, "MEAN"),
    (real_loss_on_probabilities, dcgan.fake_loss, "log\\(2\\)"),
    (real_loss_detached, dcgan.fake_loss, "autograd graph"),
    (dcgan.real_loss, fake_loss_swapped, "fake_loss"),
], ids=lambda f: getattr(f, "__name__", ""))
def test_losses_checker_rejects(real, fake, why):
    with pytest.raises(AssertionError, match=why):
        checks.test_losses(real, fake)
