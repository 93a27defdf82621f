"""Udacity-style checks for the face-generation notebook: call them with YOUR classes/functions.

    import problem_unittests as tests
    tests.test_discriminator(Discriminator)   # prints "Tests Passed" or raises AssertionError

Every check runs on CPU on tiny inputs, in its own RNG scope (the notebook's random state is left
as it was). `pytest problem_unittests.py` runs the same checks against `helpers.models.dcgan` through
the fixtures at the bottom of this file; pytest itself is not needed to import this module.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

_BATCH = 8  # > 1 so batch norm has statistics to compute


def _print_success_message() -> None:
    print("Tests Passed")


def _check(condition: bool, message: str) -> None:
    # A real exception, not `assert`: notebooks run under `python -O` must still fail loudly.
    if not condition:
        raise AssertionError(message)


class _CallSpy(TorchFunctionMode):
    """Record the names of the torch functions a forward pass calls (catches F.max_pool2d too)."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _check_gradients(model: nn.Module, what: str) -> None:
    """After backward: every trainable parameter got a finite gradient; every weight a non-zero one."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    _check(len(params) > 0, f"{what} has no trainable parameters: are the layers assigned as attributes "
                            "(self.conv1 = ...) or in an nn.Sequential/nn.ModuleList?")
    for name, p in params:
        _check(p.grad is not None, f"{what}: parameter {name!r} got no gradient; is the layer used in forward()? "
                                   "(also check for .detach(), .data or .numpy() inside forward)")
        _check(bool(torch.isfinite(p.grad).all()), f"{what}: parameter {name!r} has a NaN/inf gradient")
        # Biases before batch norm legitimately get exactly zero gradient; weights never should.
        if p.dim() > 1:
            _check(bool(p.grad.abs().sum() > 0), f"{what}: weight {name!r} got an all-zero gradient")


def _name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _random_weighted_sum(out: torch.Tensor) -> torch.Tensor:
    # A random weighting, not out.sum(): sums can cancel exactly through normalisation layers.
    return (out.float() * torch.randn_like(out.float())).sum()


def test_discriminator(Discriminator) -> None:
    """Check `Discriminator(conv_dim)` maps (B, 3, 32, 32) images in [-1, 1] to B logits."""
    conv_dim = 8
    with torch.random.fork_rng():
        torch.manual_seed(0)
        D = Discriminator(conv_dim)
        _check(isinstance(D, nn.Module), "Discriminator(conv_dim) should build an nn.Module")
        D.train()
        x = torch.rand(_BATCH, 3, 32, 32) * 2 - 1  # (B, 3, 32, 32) in [-1, 1]

        spy = _CallSpy()
        with spy:
            out = D(x)
        _check(isinstance(out, torch.Tensor), f"D(x) should return a tensor, got {type(out).__name__}")
        _check(tuple(out.shape) in ((_BATCH, 1), (_BATCH,)),
               f"D(x) for x of shape {tuple(x.shape)} should return shape ({_BATCH}, 1), got {tuple(out.shape)}; "
               "flatten the last feature map and end with a linear layer to 1 output")
        _check(bool(torch.isfinite(out).all()), "D(x) returned NaN or inf values")

        modules = list(D.modules())
        pools = sorted({type(m).__name__ for m in modules if "Pool" in type(m).__name__} |
                       {n for n in spy.names if "pool" in n.lower()})
        _check(not pools, f"the discriminator should downsample with strided convolutions, not pooling; found {pools}")
        _check(any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules),
               "the discriminator should use batch normalisation (nn.BatchNorm2d) after its hidden convolutions")
        _check(any(isinstance(m, nn.Conv2d) for m in modules), "the discriminator should use nn.Conv2d layers")
        _check(not any(isinstance(m, nn.Sigmoid) for m in modules) and "sigmoid" not in spy.names,
               "the discriminator should return raw logits: leave the sigmoid to BCEWithLogitsLoss")

        D.zero_grad()
        _random_weighted_sum(out).backward()
        _check_gradients(D, "Discriminator")
    _print_success_message()


def test_generator(Generator) -> None:
    """Check `Generator(z_size, conv_dim)` maps z ~ U(-1, 1) of shape (B, z_size) to (B, 3, 32, 32) in [-1, 1]."""
    z_size, conv_dim = 25, 8
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = Generator(z_size, conv_dim)
        _check(isinstance(G, nn.Module), "Generator(z_size, conv_dim) should build an nn.Module")
        G.train()
        z = torch.rand(_BATCH, z_size) * 2 - 1  # (B, z_size)
        out = G(z)
        _check(isinstance(out, torch.Tensor), f"G(z) should return a tensor, got {type(out).__name__}")
        _check(tuple(out.shape) == (_BATCH, 3, 32, 32),
               f"G(z) for z of shape {tuple(z.shape)} should return shape ({_BATCH}, 3, 32, 32), got {tuple(out.shape)}")
        _check(bool(torch.isfinite(out).all()), "G(z) returned NaN or inf values")
        lo, hi = float(out.detach().min()), float(out.detach().max())
        _check(lo >= -1 - 1e-6 and hi <= 1 + 1e-6,
               f"G(z) values should lie in [-1, 1] like the scaled real images (end with tanh); got [{lo:.3f}, {hi:.3f}]")
        spread = float(out.detach().std(dim=0).mean())
        _check(spread > 1e-4, "G(z) gives (almost) the same image for different z: does forward() use its input?")

        G.zero_grad()
        _random_weighted_sum(out).backward()
        _check_gradients(G, "Generator")

        # eval mode must work too: that is how the notebook samples images after training.
        G.eval()
        with torch.no_grad():
            out_eval = G(z[:2])
        _check(tuple(out_eval.shape) == (2, 3, 32, 32), f"G(z) in eval mode returned shape {tuple(out_eval.shape)}")
    _print_success_message()


def test_scale(scale) -> None:
    """Check `scale(x, feature_range=(-1, 1))` maps [0, 1] linearly onto feature_range."""
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    before = x.clone()
    out = scale(x)
    _check(isinstance(out, torch.Tensor), f"scale(x) should return a tensor, got {type(out).__name__}")
    expected = torch.tensor([-1.0, -0.5, 0.0, 1.0])
    _check(out.shape == x.shape and torch.allclose(out.float(), expected, atol=1e-6),
           f"scale({x.tolist()}) should be {expected.tolist()} (0 -> -1, 0.5 -> 0, 1 -> 1), got {out.tolist()}")
    _check(torch.equal(x, before), "scale(x) should not modify its input in place")

    out = scale(x, feature_range=(-0.5, 2.0))
    expected = torch.tensor([-0.5, 0.125, 0.75, 2.0])
    _check(torch.allclose(out.float(), expected, atol=1e-6),
           f"scale(x, feature_range=(-0.5, 2.0)) should map 0 -> -0.5 and 1 -> 2.0 linearly: expected "
           f"{expected.tolist()}, got {out.tolist()}; use the feature_range argument instead of hard-coding -1 and 1")

    batch = torch.linspace(0, 1, 96).reshape(2, 3, 4, 4)
    out = scale(batch)
    _check(out.shape == batch.shape, f"scale should keep the shape {tuple(batch.shape)}, got {tuple(out.shape)}")
    _check(float(out.min()) >= -1 and float(out.max()) <= 1, "scale of [0, 1] images left [-1, 1]")
    _print_success_message()


def test_weights_init_normal(weights_init_normal) -> None:
    """Check `net.apply(weights_init_normal)` gives conv/linear weights N(0, 0.02) and zero biases."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(3, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Flatten(), nn.Linear(512, 64),
        )
        fills = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
        # Start from values no init would produce, so doing nothing cannot pass.
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, fills):
                    m.weight.fill_(0.5)
                    m.bias.fill_(0.5)
        net.apply(weights_init_normal)

    for m in [m for m in net.modules() if isinstance(m, fills)]:
        kind, w, b = type(m).__name__, m.weight.detach(), m.bias.detach()
        # A 3,000+ sample std estimate is within ~2% of the truth; 15% leaves room, not doubt.
        _check(abs(float(w.std()) - 0.02) < 0.003,
               f"{kind} weights should have std 0.02, got {float(w.std()):.4f}; use nn.init.normal_(m.weight, 0.0, 0.02)")
        _check(abs(float(w.mean())) < 0.003, f"{kind} weights should have mean 0, got {float(w.mean()):.4f}")
        _check(bool((b == 0).all()), f"{kind} biases should be set to 0, got values like {float(b[0]):.3f}")
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            w, b = m.weight.detach(), m.bias.detach()
            _check(abs(float(w.mean()) - 1) < 0.05,
                   f"BatchNorm weights should stay around 1 (a scale), got mean {float(w.mean()):.3f}; "
                   "does the class-name test also catch BatchNorm layers? (N(1, 0.02) or leaving them alone both pass)")
            _check(bool((b.abs() < 1e-6).all()), "BatchNorm biases should be 0")
    _print_success_message()


def test_losses(real_loss, fake_loss) -> None:
    """Check `real_loss(D_out, smooth=False)` and `fake_loss(D_out)` on logits with known answers."""
    B = 16
    big = torch.full((B, 1), 20.0)  # D is sure: "real"
    zero = torch.zeros(B, 1)

    def value(fn, logits, **kwargs) -> float:
        out = fn(logits, **kwargs)
        _check(isinstance(out, torch.Tensor) and out.numel() == 1,
               f"{_name(fn)} should return a scalar tensor, got {getattr(out, 'shape', type(out).__name__)}")
        return float(out.detach())

    for fn in (real_loss, fake_loss):
        got = value(fn, zero)
        _check(math.isclose(got, math.log(2), abs_tol=1e-4),
               f"{_name(fn)} of zero logits should be log(2) = 0.6931 (the MEAN binary cross-entropy), got {got:.4f}; "
               "does it take logits (BCEWithLogitsLoss) and average over the batch?")

    got = value(real_loss, big)
    _check(got < 1e-3, f"real_loss of large positive logits should be ~0, got {got:.4f}")
    got = value(real_loss, -big)
    _check(got > 5, f"real_loss of large negative logits should be large, got {got:.4f}")
    got = value(fake_loss, -big)
    _check(got < 1e-3, f"fake_loss of large negative logits should be ~0, got {got:.4f}")
    got = value(fake_loss, big)
    _check(got > 5, f"fake_loss of large positive logits should be large, got {got:.4f}")

    try:
        smoothed = value(real_loss, big, smooth=True)
    except TypeError as err:
        raise AssertionError(f"real_loss should accept smooth=True (label smoothing): {err}") from err
    plain = value(real_loss, big)
    # With labels 0.9 a logit of 20 costs 0.1 * 20 = 2: smoothing penalises over-confidence.
    _check(smoothed > plain + 0.5,
           "real_loss(D_out, smooth=True) should use labels 0.9, which makes over-confident logits cost more; "
           f"got {smoothed:.4f} with smoothing vs {plain:.4f} without")

    for fn in (real_loss, fake_loss):
        logits = torch.linspace(-3, 3, B).reshape(B, 1).requires_grad_(True)
        loss = fn(logits)
        _check(loss.requires_grad, f"{_name(fn)} should stay in the autograd graph (no .item()/.detach() inside)")
        loss.backward()
        _check(logits.grad is not None and bool(logits.grad.abs().sum() > 0),
               f"no gradient flows from {_name(fn)} back to D_out")
    _print_success_message()


# --- pytest glue: `pytest problem_unittests.py` checks the project's own implementations. ---
try:
    import pytest
except ImportError:  # a notebook kernel without pytest can still import the checks
    pytest = None

if pytest is not None:
    @pytest.fixture(name="Discriminator")
    def _discriminator():
        from helpers.models.dcgan import Discriminator
        return Discriminator

    @pytest.fixture(name="Generator")
    def _generator():
        from helpers.models.dcgan import Generator
        return Generator

    @pytest.fixture(name="scale")
    def _scale():
        from helpers.data import scale
        return scale

    @pytest.fixture(name="weights_init_normal")
    def _weights_init_normal():
        from helpers.gan import weights_init_normal
        return weights_init_normal

    @pytest.fixture(name="real_loss")
    def _real_loss():
        from helpers.gan import real_loss
        return real_loss

    @pytest.fixture(name="fake_loss")
    def _fake_loss():
        from helpers.gan import fake_loss
        return fake_loss
