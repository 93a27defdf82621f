"""Behaviour of helpers.models.dcgan (and the gan losses it uses): shapes, architecture rules, losses against the maths, a short training run."""
from __future__ import annotations

import math
import sys
from pathlib import Path  # noqa: F401

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

# pytest's default import mode puts tests/ (not the repo root) on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.models import dcgan  # noqa: E402
from helpers.models.dcgan import (Discriminator, Generator, build_network, fake_loss, gradient_penalty,  # noqa: E402
                           real_loss, wgan_d_loss, wgan_g_loss)


def _images(b, size, channels=3):
    return torch.rand(b, channels, size, size) * 2 - 1  # (B, C, H, W) in [-1, 1]


def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- shapes and architecture ---------------------------------------------------------------

@pytest.mark.parametrize("img_size", [16, 32, 64])
def test_shapes_round_trip(img_size):
    D, G = Discriminator(8, img_size=img_size), Generator(20, 8, img_size=img_size)
    z = torch.rand(4, 20) * 2 - 1
    fake = G(z)
    assert fake.shape == (4, 3, img_size, img_size)
    assert fake.abs().max() <= 1
    assert D(fake).shape == (4, 1)
    assert D(_images(4, img_size)).shape == (4, 1)


def test_128_and_other_channel_counts():
    D, G = Discriminator(4, img_size=128, channels=1), Generator(10, 4, img_size=128, channels=1)
    fake = G(torch.randn(2, 10))
    assert fake.shape == (2, 1, 128, 128)
    assert D(fake).shape == (2, 1)


@pytest.mark.parametrize("img_size, stages", [(16, 2), (32, 3), (64, 4), (128, 5)])
def test_stage_count_follows_img_size(img_size, stages):
    D, G = Discriminator(4, img_size=img_size), Generator(10, 4, img_size=img_size)
    assert D.stages == G.stages == stages
    assert _count(D, nn.Conv2d) == stages
    assert _count(G, nn.ConvTranspose2d) == stages
    # D's channels double per stage; G starts where D ends, so they mirror each other.
    assert D.top_channels == G.top_channels == 4 * 2 ** (stages - 1)
    assert D.fc.in_features == D.top_channels * 16


@pytest.mark.parametrize("bad", [8, 24, 48, 0])
def test_img_size_must_be_power_of_two_at_least_16(bad):
    with pytest.raises(ValueError):
        Discriminator(4, img_size=bad)
    with pytest.raises(ValueError):
        Generator(10, 4, img_size=bad)


def test_discriminator_follows_course_rules():
    D = Discriminator(8)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert [c.out_channels for c in convs] == [8, 16, 32]
    assert not any("Pool" in type(m).__name__ for m in D.modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    # First conv: no batch norm, so it keeps its bias; the rest are normalised and bias-free.
    assert isinstance(D.features[1], nn.LeakyReLU) and D.features[1].negative_slope == 0.2
    assert _count(D, nn.BatchNorm2d) == 2
    assert convs[0].bias is not None and all(c.bias is None for c in convs[1:])


def test_generator_mirrors_discriminator():
    G = Generator(20, 8)
    tconvs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [t.out_channels for t in tconvs] == [16, 8, 3]
    assert isinstance(G.features[-1], nn.Tanh)
    assert _count(G, nn.BatchNorm2d) == 3  # projection + every hidden transposed conv, not the output
    assert tconvs[-1].bias is not None and all(t.bias is None for t in tconvs[:-1])


def test_generator_accepts_4d_latents():
    G = Generator(20, 8).eval()
    z = torch.randn(3, 20)
    torch.testing.assert_close(G(z.view(3, 20, 1, 1)), G(z))


def test_param_counts_grow_with_conv_dim():
    d = [_n_params(Discriminator(c)) for c in (8, 16, 32)]
    g = [_n_params(Generator(50, c)) for c in (8, 16, 32)]
    assert d[0] < d[1] < d[2] and g[0] < g[1] < g[2]
    # Convs scale with conv_dim^2 (doubling ~quadruples D); G's z projection only grows linearly.
    assert 3.5 < d[2] / d[1] < 4.5 and 2.5 < g[2] / g[1] < 4.5


@pytest.mark.parametrize("norm, kind", [("layer", nn.GroupNorm), ("none", None)])
def test_critic_norm_options(norm, kind):
    D = Discriminator(8, norm=norm)
    assert _count(D, nn.BatchNorm2d) == 0
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    if kind is None:
        assert all(c.bias is not None for c in convs)
    else:
        assert _count(D, kind) == 2
    # No batch norm: each sample's score depends on that sample only (what the GP assumes).
    x = _images(4, 32)
    torch.testing.assert_close(D(x)[:1], D(x[:1]))
    with pytest.raises(ValueError):
        Discriminator(8, norm="instance-ish")


def test_build_network_initialises_and_passes_options():
    D, G = build_network(16, 16, 30, img_size=64)
    assert isinstance(D, Discriminator) and isinstance(G, Generator)
    assert _count(D, nn.Conv2d) == _count(G, nn.ConvTranspose2d) == dcgan.num_stages(64) == 4 and G.z_size == 30
    w = D.features[3].weight  # second conv: 16 * 32 * 16 weights
    assert abs(w.std().item() - 0.02) < 0.002
    assert G.stem.fc.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert (D.fc.bias == 0).all()

    Dx, _ = build_network(16, 16, 30, img_size=64, init="xavier", d_norm="layer")
    assert abs(Dx.features[3].weight.std().item() - 0.02) > 0.01
    assert _count(Dx, nn.GroupNorm) == 3
    with pytest.raises(ValueError):
        build_network(8, 8, 10, init="orthogonal")


# --- losses --------------------------------------------------------------------------------

def test_bce_losses_match_the_formula():
    x = torch.tensor([[-2.0], [0.0], [0.5], [3.0]])

    def softplus(v):
        return math.log1p(math.exp(v))

    xs = x.flatten().tolist()
    want_real = sum(softplus(-v) for v in xs) / 4  # -log(sigmoid(x))
    want_smooth = sum(0.9 * softplus(-v) + 0.1 * softplus(v) for v in xs) / 4
    want_fake = sum(softplus(v) for v in xs) / 4  # -log(1 - sigmoid(x))
    assert real_loss(x).item() == pytest.approx(want_real, rel=1e-5)
    assert real_loss(x, smooth=True).item() == pytest.approx(want_smooth, rel=1e-5)
    assert fake_loss(x).item() == pytest.approx(want_fake, rel=1e-5)
    assert real_loss(x.flatten()).item() == pytest.approx(want_real, rel=1e-5)  # (B,) works too


def test_losses_are_fp32_scalars_from_bf16_logits():
    x = torch.tensor([[-2.0], [0.5], [3.0]], dtype=torch.bfloat16)
    for loss in (real_loss(x), real_loss(x, smooth=True), fake_loss(x), wgan_d_loss(x, -x), wgan_g_loss(x)):
        assert loss.dtype == torch.float32 and loss.dim() == 0


def test_wgan_losses():
    d_real, d_fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[-1.0], [0.0]])
    assert wgan_d_loss(d_real, d_fake).item() == pytest.approx(-0.5 - 2.0)
    assert wgan_g_loss(d_fake).item() == pytest.approx(0.5)


class _LinearCritic(nn.Module):
    """D(x) = sum(w * x): its input gradient is w everywhere, so the GP is (||w|| - 1)^2 exactly."""

    def __init__(self, norm):
        super().__init__()
        w = torch.randn(3, 8, 8)
        self.w = nn.Parameter(w / w.norm() * norm)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)  # (B, 1)


@pytest.mark.parametrize("norm, want", [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_on_a_linear_critic(norm, want):
    critic = _LinearCritic(norm)
    real, fake = _images(5, 8), _images(5, 8).requires_grad_(True)
    gp = gradient_penalty(critic, real, fake)
    assert gp.dim() == 0 and gp.item() == pytest.approx(want, abs=1e-5)
    # create_graph=True: the penalty trains the critic. d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
    gp.backward()
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1) * critic.w.detach() / norm)
    assert fake.grad is None  # never reaches the generator


def test_gradient_penalty_trains_a_real_critic_channels_last():
    D = Discriminator(8, norm="layer")
    real = _images(4, 32).contiguous(memory_format=torch.channels_last)
    fake = _images(4, 32).requires_grad_(True)  # stands in for G's output
    gp = gradient_penalty(D, real, fake)
    assert torch.isfinite(gp) and gp.item() > 0
    gp.backward()
    assert fake.grad is None  # the penalty must not train G
    # Weights shape the input gradient; the final bias cannot, so only weights are required.
    weights = [p for p in D.parameters() if p.dim() > 1]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


# --- training, mixed precision, memory format ----------------------------------------------

def test_short_training_lowers_d_loss_and_then_g_loss():
    # D against a fixed G learns to tell real from fake: its loss must fall (not merely move);
    # then G against that fixed D learns to fool it: G's loss must fall.
    D, G = build_network(8, 8, 16, img_size=16)
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, z = _images(16, 16), torch.rand(16, 16) * 2 - 1
    with torch.no_grad():
        fake = G(z)

    def d_value():
        return (real_loss(D(real), smooth=True) + fake_loss(D(fake))).item()

    d_before = d_value()
    for _ in range(30):
        d_opt.zero_grad()
        (real_loss(D(real), smooth=True) + fake_loss(D(fake))).backward()
        d_opt.step()
    assert d_value() < d_before - 0.1
    D.eval()
    g_before = real_loss(D(G(z))).item()
    for _ in range(30):
        g_opt.zero_grad()
        real_loss(D(G(z))).backward()
        g_opt.step()
    g_after = real_loss(D(G(z))).item()
    assert math.isfinite(g_after) and g_after < g_before - 0.1


def test_bf16_autocast_forward_and_fp32_losses():
    D, G = build_network(8, 8, 16, img_size=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = G(torch.randn(4, 16))
        d_out = D(fake)
        d_loss = fake_loss(d_out) + real_loss(D(_images(4, 32)), smooth=True)
    assert d_out.shape == (4, 1) and d_out.dtype == torch.bfloat16  # autocast is really on
    assert d_loss.dtype == torch.float32 and torch.isfinite(d_loss)
    d_loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())


def test_bf16_autocast_gradient_penalty():
    D = Discriminator(8, norm="layer")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(D, _images(4, 32), _images(4, 32))
    assert gp.dtype == torch.float32 and torch.isfinite(gp)
    gp.backward()


def test_channels_last_matches_contiguous():
    D, G = build_network(8, 8, 16, img_size=32)
    D.eval(), G.eval()
    x = _images(4, 32)
    want = D(x)
    D_cl = D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(D_cl(x.contiguous(memory_format=torch.channels_last)), want, atol=1e-5, rtol=1e-4)
    G_cl = G.to(memory_format=torch.channels_last)
    out = G_cl(torch.randn(2, 16))
    assert out.shape == (2, 3, 32, 32)
    F.mse_loss(out, torch.zeros_like(out)).backward()


def test_the_sampler_draws_with_the_average_and_needs_no_g_beside_it():
    """A published set ships G_ema without G (make evaluate keeps only what the set ships)."""
    from helpers.gan import sampler

    g, avg = nn.Linear(1, 1), nn.Linear(1, 1)
    assert sampler({"G": g, "G_ema": avg}) is avg and sampler({"G_ema": avg}) is avg and sampler({"G": g}) is g
