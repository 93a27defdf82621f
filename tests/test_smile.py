"""SMiLE converter: ACGAN / WACGAN networks and losses, the critic schedule, training + resume,
the encoder and conversion, and the converter's sliders (notebook 03)."""
import datetime
import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import helpers as H
from helpers.core.checkpoint import CheckpointMismatch
from helpers.core.train import TrainState
from helpers.data.faces import FaceSet, to_range
from helpers.gan import generate, invert
from helpers.models import smile
from helpers.models import smile as ST
from helpers.models.smile import ui as SW

from .fixtures import astronaut, png_bytes


def toy_faces(n=64, size=16, seed=0):
    """Faces whose class is visible: 'Smiling' ones have a bright lower half."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 120, (n, 3, size, size), generator=g, dtype=torch.uint8)
    smiling = torch.arange(n) % 2
    imgs[smiling.bool(), :, size // 2:] += 120
    attrs = torch.stack([smiling.float(), (torch.arange(n) % 3 == 0).float()], 1)
    return FaceSet(imgs, attrs, ["Smiling", "Male"], "toy", "toy", "train")


class ToyOracle:
    """Reads 'Smiling' from a bright lower half and 'Male' from a bright left edge."""

    attr_names = ["Smiling", "Male"]

    def predict(self, x):
        x = x.float()
        h = x.shape[-1]
        smile_p = (x[:, :, h // 2:].mean((1, 2, 3)) > x[:, :, :h // 2].mean((1, 2, 3))).float()
        male_p = (x[:, :, :, :2].mean((1, 2, 3)) > 0.5).float()
        return torch.stack([smile_p, male_p], 1)


def tiny(**kw):
    base = dict(img_size=16, z_dim=8, g_conv_dim=8, d_conv_dim=8, batch_size=16, epochs=2, max_seconds=None,
                ema=0.9, amp=False)
    return ST.GANConfig(**{**base, **kw})


# ---- networks ------------------------------------------------------------------------------
def test_shapes_and_ranges():
    D, G = smile.build_gan(z_dim=8, n_classes=1, g_conv_dim=8, d_conv_dim=8, img_size=16).values()
    z, c = torch.randn(4, 8), torch.tensor([[0.0], [1.0], [0.5], [1.5]])
    x = G(z, c)
    assert x.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    adv, cls, f = D(x, with_features=True)
    assert adv.shape == (4, 1) and cls.shape == (4, 1) and f.shape == (4, D.top_channels * 16)
    E = smile.Encoder(z_dim=8, n_classes=1, conv_dim=8, img_size=16)
    z_hat, logit = E(x)
    assert z_hat.shape == (4, 8) and logit.shape == (4, 1)
    with pytest.raises(ValueError, match="z_dim=8"):
        G(torch.randn(4, 9), c)


def test_class_code_interpolates_and_changes_the_face():
    code = smile.class_code(torch.tensor([0.0, 1.0, 0.5, -0.5]))
    assert torch.allclose(code, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [-0.5, 1.5]]))
    torch.manual_seed(0)
    G = smile.CondGenerator(z_dim=8, conv_dim=8, img_size=16).eval()
    z = torch.randn(1, 8)
    assert not torch.allclose(G(z, torch.zeros(1, 1)), G(z, torch.ones(1, 1)))


# ---- losses --------------------------------------------------------------------------------
def test_class_loss_is_two_class_cross_entropy_on_logits():
    logits, c = torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [0.0]])
    two = torch.cat([torch.zeros(2, 1), logits], 1)  # softmax over (0, l) == sigmoid(l)
    ce = torch.nn.functional.cross_entropy(two, c[:, 0].long())
    assert torch.allclose(smile.class_loss(logits, c), ce)


def test_feature_matching_and_image_losses():
    a, b = torch.randn(8, 5), torch.randn(8, 5) + 1
    for kind in ("l1", "l2"):
        assert smile.feature_matching(a, a, kind) == 0 and smile.feature_matching(a, b, kind) > 0.5
        assert smile.image_loss(a, a, kind) == 0 and smile.image_loss(a, b, kind) > 0.5
    b.requires_grad_(True)
    smile.feature_matching(a.requires_grad_(True), b).backward()
    assert a.grad is None and b.grad.abs().sum() > 0  # only the fake side learns
    with pytest.raises(ValueError, match="'l1' or 'l2'"):
        smile.feature_matching(a, b, "l3")


def test_prior_penalty_small_on_the_prior_large_off_it():
    z = torch.randn(4000, 16, generator=torch.Generator().manual_seed(0))
    assert smile.prior_penalty(z) < 0.01
    assert smile.prior_penalty(z * 0.1 + 2) > 3


def test_critic_schedule_follows_the_wgan_reference():
    is_g = smile.critic_schedule(n_critic=5, warmup_critic=100, warmup_g_steps=25, warmup_every=500)
    g_steps = [s for s in range(2600) if is_g(s)]
    assert g_steps[:2] == [99, 199] and g_steps[24] == 2499 and g_steps[25:27] == [2504, 2509]
    plain = smile.critic_schedule(2, warmup_critic=2, warmup_g_steps=0, warmup_every=0)
    assert [s for s in range(8) if plain(s)] == [1, 3, 5, 7]


def test_clip_weights_spares_the_class_head():
    D = smile.ACDiscriminator(8, img_size=16, norm="none")
    with torch.no_grad():
        for p in D.parameters():
            p.fill_(0.5)
    smile.clip_weights(D, 0.01)
    assert D.fc.weight.max() == 0.01 and D.features[0].weight.max() == 0.01 and D.cls.weight.max() == 0.5


# ---- training ------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["bce", "wgan-gp"])
def test_d_learns_the_class_on_a_tiny_batch(loss):
    torch.manual_seed(0)
    fs = toy_faces(32)
    cfg = tiny(loss=loss, fm="l1", d_norm="batch" if loss == "bce" else "layer", n_critic=1, warmup_critic=1,
               warmup_g_steps=0, warmup_every=0)
    D, G = smile.build_gan(8, 1, 8, 8, img_size=16, d_norm=cfg.d_norm).values()
    d_opt, g_opt = (torch.optim.Adam(m.parameters(), 2e-3, betas=(0.5, 0.999)) for m in (D, G))
    step = ST.make_gan_step(D, G, None, d_opt, g_opt, cfg, [0])
    batch = (to_range(fs.images), fs.attrs)
    state = TrainState()
    logs = []
    for _ in range(30):
        logs.append(step(batch, state))
        state.step += 1
    assert logs[-1]["d_cls"] < 0.5 * logs[0]["d_cls"] and "g_loss" in logs[-1]


def _weights(nets):
    return {f"{k}.{n}": p.detach().clone() for k, m in nets.items() for n, p in m.state_dict().items()}


@pytest.mark.parametrize("loss", ["bce", "wgan-clip"])
def test_gan_trainer_resumes_exactly_and_refuses_another_config(tmp_path, loss):
    fs = toy_faces(64)
    cfg = tiny(loss=loss, lr=5e-5 if loss == "wgan-clip" else 2e-4, d_norm="none" if loss != "bce" else "batch",
               warmup_critic=3, warmup_g_steps=2, warmup_every=4)
    torch.manual_seed(0)
    full, nets_full = ST.build_gan_trainer(cfg, fs, "cpu", tmp_path / "a", progress=False)
    full.fit(2)
    torch.manual_seed(0)
    half, _ = ST.build_gan_trainer(cfg, fs, "cpu", tmp_path / "b", progress=False)
    half.fit(1)
    again, nets_again = ST.build_gan_trainer(cfg, fs, "cpu", tmp_path / "b", progress=False)
    again.fit(2)
    assert again.state.step == full.state.step == 8 and len(again.state.samples) == 2
    wa, wb = _weights(nets_full), _weights(nets_again)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    other, _ = ST.build_gan_trainer(replace(cfg, cls_weight=2.0), fs, "cpu", tmp_path / "b", progress=False)
    with pytest.raises(CheckpointMismatch, match="cls_weight"):
        other.fit(3)


def test_trained_gans_follow_the_config_and_the_set():
    cfg = ST.config_for("smoke")
    assert ST.trained_gans(cfg) == ("acgan", "wacgan") and list(ST.parts(cfg)) == ["acgan", "wacgan"]
    alone = replace(cfg, gans=("acgan",))
    assert ST.trained_gans(alone) == ("acgan",) and list(ST.parts(alone)) == ["acgan"]

    class Set:  # a published set without the WACGAN (the celeba set)
        payload = {"parts": {"acgan": {}, "encoder_before": {}, "encoder_after": {}}}

    assert ST.trained_gans(cfg, Set()) == ("acgan",)
    for bad in (("wacgan",), ("acgan", "bigan")):
        with pytest.raises(ValueError, match="needs 'acgan'"):
            ST.trained_gans(replace(cfg, gans=bad))


def test_encoder_learns_and_refuses_another_generator(tmp_path):
    torch.manual_seed(0)
    fs, gcfg = toy_faces(64), tiny()
    G = smile.CondGenerator(8, 1, 8, img_size=16).eval()
    ecfg = ST.EncoderConfig(e_conv_dim=8, batch_size=16, lr=2e-3, latent_weight=1.0, prior_weight=0.1,
                            real_weight=1.0, epochs=6, max_seconds=None, amp=False)
    tr, E = ST.build_encoder_trainer(ecfg, G, gcfg, fs, "cpu", tmp_path, generator_tag="g1", progress=False,
                                     log_every=4)
    state = tr.fit(6)
    lat = state.history["latent"]
    assert lat[-1] < 0.8 * lat[0] and not any(p.requires_grad for p in G.parameters())
    other, _ = ST.build_encoder_trainer(ecfg, G, gcfg, fs, "cpu", tmp_path, generator_tag="g2", progress=False)
    with pytest.raises(CheckpointMismatch, match="generator"):
        other.fit(7)
    # latent-optimisation settings act at conversion time only: they must not invalidate E
    same, _ = ST.build_encoder_trainer(replace(ecfg, latent_steps=9), G, gcfg, fs, "cpu", tmp_path,
                                       generator_tag="g1", progress=False)
    assert same.load()


def test_latent_optimisation_lowers_the_reconstruction_error():
    torch.manual_seed(0)
    G = smile.CondGenerator(8, 1, 8, img_size=16).eval()
    z_true, c = torch.randn(6, 8), torch.ones(6, 1)
    x = generate(G, z_true, c)
    z0 = torch.zeros(6, 8)
    z, per_image = invert(G, x, z0, c, steps=40, lr=0.1, kind="l2", prior=0.0)
    err = lambda zz: float((generate(G, zz, c) - x).pow(2).mean())  # noqa: E731
    assert torch.allclose(per_image.mean(), torch.tensor(err(z)), rtol=1e-4)
    assert err(z) < 0.5 * err(z0) and all(p.requires_grad for p in G.parameters())


def test_the_class_switch_is_one_shift_of_the_first_map():
    torch.manual_seed(0)
    G = smile.CondGenerator(8, 1, 8, img_size=16).eval()
    z, c = torch.randn(5, 8), torch.tensor([[0.0], [1.0], [0.3], [1.0], [0.0]])
    m = G.first_map(z, c)
    assert m.shape == (5, 16 * 4 * 4) and torch.allclose(G.from_map(m), G(z, c))
    assert torch.allclose(G.from_map(m + G.class_shift(c, 1 - c)), G(z, 1 - c), atol=1e-6)
    assert torch.allclose(G.class_shift(c, c), torch.zeros_like(m))  # no switch, no shift


def test_map_inversion_reaches_a_face_the_latent_cannot():
    torch.manual_seed(0)
    G, E = smile.CondGenerator(8, 1, 8, img_size=16).eval(), smile.Encoder(8, 1, 8, img_size=16).eval()
    c = torch.ones(6, 1)
    with torch.no_grad():  # a face G can draw from some first map, but from no z
        x = G.from_map(G.first_map(torch.randn(6, 8), c) + torch.randn(6, 16 * 16))
    err = lambda out: float((out["recon"] - x).pow(2).mean())  # noqa: E731
    by_z = ST.convert(G, E, x, c, 1 - c, latent_steps=20, latent_lr=0.1)
    by_map = ST.convert(G, E, x, c, 1 - c, latent_steps=20, latent_lr=0.1, map_steps=20, map_lr=0.05)
    assert err(by_map) < 0.5 * err(by_z) and by_map["m"].shape == (6, 16 * 16)
    same = ST.convert(G, E, x, c, c, latent_steps=20, latent_lr=0.1, map_steps=20, map_lr=0.05)
    assert torch.equal(same["converted"], same["recon"])  # the own class: no change
    assert (by_map["converted"] - by_map["recon"]).abs().mean() > 1e-3  # the switch still acts


class ToyCondG(torch.nn.Module):
    """G(z, c): class 1 brightens the lower half (ToyOracle's smile), z[0] > 0 the left edge (its 'Male').
    Its "first map" is cat(z, c), so the class switch is a shift of the map, as in CondGenerator."""

    def __init__(self, ignore_class=False):
        super().__init__()
        self.w, self.n_classes, self.z_dim, self.ignore = torch.nn.Parameter(torch.zeros(1)), 1, 8, ignore_class

    def first_map(self, z, c):
        return torch.cat([z, c.float().reshape(len(z), -1)], 1)

    def class_shift(self, c, target):
        d = (target.float() - c.float()).reshape(len(c), -1)
        return torch.cat([d.new_zeros(len(d), self.z_dim), d], 1)

    def from_map(self, m):
        img = torch.full((len(m), 3, 16, 16), -0.5) + 0 * self.w
        if not self.ignore:
            img[:, :, 8:] += m[:, -1].reshape(-1, 1, 1, 1)
        img[:, :, :, :2] = torch.where(m[:, :1, None, None] > 0, 0.9, -0.5).expand(-1, 3, 16, 2)
        return img

    def forward(self, z, c):
        return self.from_map(self.first_map(z, c))


class ToyE(torch.nn.Module):
    """Reads z[0] back from the left edge and the class from the lower half."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        z = torch.zeros(len(x), 8) + 0 * self.w
        z[:, 0] = x[:, :, :, :2].mean((1, 2, 3))
        return z, 10 * (x[:, :, 8:].mean((1, 2, 3)) - x[:, :, :8].mean((1, 2, 3)) - 0.4)[:, None]


def test_conversion_metrics_read_the_flip():
    fs = toy_faces(32)
    good = ST.conversion_metrics(ToyCondG(), ToyE(), ToyOracle(), fs, tiny(), ST.EncoderConfig(), n=16)
    assert good["conversion_accuracy"] == 1.0 and good["preserve_accuracy"] == 1.0 and good["class_from_E"] == 1.0
    assert np.isfinite(good["recon_psnr"]) and good["recon_class_accuracy"] == 1.0
    broken = ST.conversion_metrics(ToyCondG(ignore_class=True), ToyE(), ToyOracle(), fs, tiny(), ST.EncoderConfig(), n=16)
    assert broken["conversion_accuracy"] <= 0.5  # G ignores the class: the flip is read only where no smile was
    assert ST.class_accuracy(ToyCondG(), ToyOracle(), tiny(), n=16) == 1.0
    assert ST.class_accuracy(ToyCondG(ignore_class=True), ToyOracle(), tiny(), n=16) == 0.5
    torch.manual_seed(0)
    G, E = smile.CondGenerator(8, 1, 8, img_size=16), smile.Encoder(8, 1, 8, img_size=16)
    m = ST.conversion_metrics(G, E, ToyOracle(), fs, tiny(), ST.EncoderConfig(latent_steps=2), n=16)
    assert 0 <= m["conversion_accuracy"] <= 1 and np.isfinite(m["recon_psnr"])  # a real pair runs end to end


# ---- sliders -------------------------------------------------------------------------------
def png_of(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_the_conversion_table_shows_every_converter_and_dashes_what_was_not_judged():
    text = ST.conversion_table({"plain": {"conversion_accuracy": 0.9, "preserve_accuracy": 0.8, "recon_psnr": 24.0,
                                          "identity_kept_residual": 0.75}})
    header, row = text.splitlines()
    assert "identity_kept" in header and row.startswith("plain") and "0.900" in row and "24.000" in row
    assert row.rstrip().endswith("-, -, 0.750") and row.split()[4] == "-"  # identity_kept plain: not judged


def test_decode_upload_crops_the_centre_square():
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left and right margins are cut away by the centre crop
    arr[:, 60:] = (255, 0, 0)
    arr[:, 20:60] = (0, 255, 0)
    x = H.widgets.decode_upload(png_of(arr), size=16, align=False)
    assert x.shape == (3, 16, 16) and x.min() >= -1 and x.max() <= 1
    inner = x[:, :, 1:-1]  # as in the data cache, LANCZOS reads a little past the square at its edge columns
    assert torch.allclose(inner[1], torch.ones(16, 14), atol=0.02)
    assert torch.allclose(inner[0], -torch.ones(16, 14), atol=0.02)
    assert x[1].min() > 0.8 and x[0].max() < -0.8
    with pytest.raises(ValueError, match="JPEG or PNG"):
        H.widgets.decode_upload(b"not an image", size=16)
    with pytest.raises(ValueError, match="empty"):
        H.widgets.decode_upload(b"", size=16)


def _models():
    torch.manual_seed(0)
    make = lambda: (smile.CondGenerator(8, 1, 8, img_size=16).eval(), smile.Encoder(8, 1, 8, img_size=16).eval())  # noqa: E731
    return {"ACGAN": make(), "WACGAN": make()}


def test_render_conversion_follows_the_amount():
    G, E = _models()["ACGAN"]
    x = torch.rand(3, 16, 16) * 2 - 1
    m, c = SW.encode_one(G, E, x, torch.tensor([1.0]), latent_steps=2, map_steps=2)
    a, ra = SW.render_conversion(G, x, m, c, 0.0, ToyOracle())
    b, rb = SW.render_conversion(G, x, m, c, 1.5, ToyOracle())
    assert a.dtype == np.uint8 and a.shape == (20, 38, 3) and not np.array_equal(a, b)
    assert np.array_equal(a[:, :19], b[:, :19]) and ra["before"] == rb["before"]  # the input side stays
    assert SW.render_amount_strip(G, m, c, (0.0, 1.0)).shape == (20, 38, 3)
    same, _ = SW.render_conversion(G, x, m, c, 1.0, residual=True)
    assert np.array_equal(same[2:18, 2:18], same[2:18, 20:36])  # residual at its own class: the photo itself
    flipped, _ = SW.render_conversion(G, x, m, c, 0.0, residual=True)
    assert not np.array_equal(flipped, same) and not np.array_equal(flipped, a)


def test_converter_every_control_changes_the_picture():
    fs = toy_faces(8)
    imgs, classes = to_range(fs.images), fs.attrs[:, :1]
    box = SW.converter(_models(), imgs, classes, ToyOracle(), latent_steps=1)
    c = box.controls
    amount, pick, switch, upload = c["amount"], c["pick"], c["model"], c["upload"]
    assert amount.value == 1.0 - float(classes[0, 0])
    for move in (lambda: setattr(amount, "value", 1.3), lambda: setattr(pick, "value", 3),
                 lambda: setattr(switch, "value", "WACGAN")):
        before, text = box.image.value, box.readout.value
        move()
        assert box.image.value != before and box.readout.value != text
    assert amount.value == 1.0 - float(classes[3, 0])  # a new face starts converted to the other class
    before = box.image.value
    c["residual"].value = True
    assert box.image.value != before
    before = box.image.value
    upload.value = ({"name": "me.png", "type": "image/png", "size": 1, "last_modified": datetime.datetime(2024, 1, 1),
                     "content": memoryview(png_bytes(astronaut()))},)
    assert box.image.value != before and "your image, aligned: face" in box.readout.value
    before = box.image.value
    c["align"].value = False  # the same photo again, only centre-cropped
    assert box.image.value != before and "not aligned" in box.readout.value
    c["align"].value = True
    flat = {"name": "flat.png", "type": "image/png", "size": 1, "last_modified": datetime.datetime(2024, 1, 1),
            "content": memoryview(png_of(np.full((20, 20, 3), 200, np.uint8)))}
    before = box.image.value
    upload.value = (flat,)
    assert "no face found in the upload" in box.readout.value and box.image.value == before
