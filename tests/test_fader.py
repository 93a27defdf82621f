"""Fader Networks: shapes, attribute maps at every layer, losses, training + resume, checkpoints of
another attribute set refused, evaluation, the sweep figure, the upload path and the sliders."""
import io
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

import helpers as H
from helpers.core.checkpoint import CheckpointMismatch
from helpers.data import DataError
from helpers.data.faces import FaceSet, to_range
from helpers.eval.oracle import AttributeOracle
from helpers.eval.panel import Judges
from helpers.models import fader
from helpers.models.fader import ui as fader_widgets
from helpers.ui import widgets

from .fixtures import astronaut, png_bytes

ATTRS = ("Smiling", "Male", "Eyeglasses")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets: one thread is fastest, and it does not stall when other jobs hold the cores
    (measured: 30 steps in 0.15 s on 1 thread, 15 s on 2 threads beside a busy neighbour)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cfg(**kw):
    base = dict(img_size=16, conv_dim=8, d_hidden=16, batch_size=8, lambda_lat=1e-2, lambda_schedule=10,
                epochs=2, val_images=16, keep_every=1, amp=False)
    return fader.config_for("smoke", **{**base, **kw})


def tiny_faces(n=32, size=16, names=ATTRS, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    attrs = (torch.rand(n, len(names), generator=g) > 0.5).float()
    return FaceSet(imgs, attrs, list(names), "tiny", "tiny", "train")


def tiny_oracle(size=16):
    torch.manual_seed(0)
    return AttributeOracle([*ATTRS, "Young"], in_size=size).eval()


# ---- networks ------------------------------------------------------------------------------
@pytest.mark.parametrize("size,layers", [(16, 3), (32, 4), (64, 5), (256, 7)])
def test_layer_count_follows_img_size_down_to_a_2x2_latent(size, layers):
    assert fader.num_layers(size, 2) == layers


def test_bad_sizes_and_options_fail_clearly():
    with pytest.raises(ValueError, match="power of two"):
        fader.num_layers(48, 2)
    with pytest.raises(ValueError, match="inject"):
        fader.Decoder(tiny_cfg(inject="middle"))


def test_shapes_and_ranges():
    cfg = tiny_cfg()
    E, G, D = fader.build_networks(cfg).values()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    z = E(x)
    assert z.shape == (4, 32, 2, 2)  # 8 -> 16 -> 32 channels, 16 -> 2 px
    out = G(z, torch.tensor([[0.0, 1, 2]] * 4))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert D(z).shape == (4, 3)
    with pytest.raises(ValueError, match="attributes must be"):
        G(z, torch.zeros(4, 2))


def test_attribute_maps_are_constant_one_minus_a_and_a():
    maps = fader.attribute_maps(torch.tensor([[0.0, 2.0]]), 3)
    assert maps.shape == (1, 4, 3, 3)
    assert torch.equal(maps[0, :, 1, 2], torch.tensor([1.0, 0.0, -1.0, 2.0]))


def test_attributes_enter_every_decoder_layer_or_only_the_first():
    full, first = fader.Decoder(tiny_cfg()), fader.Decoder(tiny_cfg(inject="first"))
    extra = 2 * len(ATTRS)
    full_in = [b[0].in_channels for b in full.blocks]
    first_in = [b[0].in_channels for b in first.blocks]
    assert full_in == [32 + extra, 16 + extra, 8 + extra]
    assert first_in == [32 + extra, 16, 8]


def test_decoder_output_moves_with_a_slid_attribute():
    torch.manual_seed(0)
    G = fader.build_networks(tiny_cfg())["G"].eval()
    z = torch.randn(2, 32, 2, 2)
    y = torch.zeros(2, 3)
    assert not torch.allclose(G(z, y), G(z, fader.flip_one(y, 1)))


# ---- losses and the step -------------------------------------------------------------------
def test_lambda_ramps_linearly_then_holds():
    cfg = tiny_cfg(lambda_lat=1e-4, lambda_schedule=500_000)
    assert fader.lambda_at(cfg, 0) == 0
    assert fader.lambda_at(cfg, 250_000) == pytest.approx(5e-5)
    assert fader.lambda_at(cfg, 10**7) == pytest.approx(1e-4)
    assert fader.lambda_at(tiny_cfg(lambda_schedule=0), 0) == pytest.approx(1e-2)


def test_adversarial_loss_rewards_the_flipped_reading():
    y = torch.tensor([[1.0, 0.0]])
    right, wrong = torch.tensor([[5.0, -5.0]]), torch.tensor([[-5.0, 5.0]])
    assert fader.discriminator_loss(right, y) < fader.discriminator_loss(wrong, y)
    assert fader.adversarial_loss(wrong, y) < fader.adversarial_loss(right, y)


def test_balanced_losses_do_not_let_d_ignore_a_rare_attribute():
    y = torch.zeros(20, 1)
    y[:2] = 1  # a 10% attribute, as Eyeglasses in CelebA
    rate = y.mean(0)
    w = fader.class_weights(y, rate)
    assert w.mean() == pytest.approx(1.0) and w[:2].sum() == pytest.approx(w[2:].sum())  # each class half
    always_absent = torch.full((20, 1), -3.0)  # a D that never reads the attribute
    reads_it = torch.where(y > 0.5, 3.0, -3.0)
    plain, balanced = fader.discriminator_loss(always_absent, y), fader.discriminator_loss(always_absent, y, rate)
    assert balanced > 3 * plain  # unweighted, ignoring the rare class costs D almost nothing
    assert fader.discriminator_loss(reads_it, y, rate) < 0.1 * balanced
    assert fader.class_weights(y, None) is None


def test_losses_fall_on_a_tiny_batch():
    torch.manual_seed(0)
    cfg = tiny_cfg(lr=2e-3)
    E, G, D = fader.build_networks(cfg).values()
    ae = torch.optim.Adam(list(E.parameters()) + list(G.parameters()), lr=cfg.lr, betas=(0.5, 0.999))
    dis = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    step = fader.make_step(E, G, D, ae, dis, cfg)
    f = tiny_faces(8)
    batch = (to_range(f.images), f.attrs)
    state = type("S", (), {"step": 0})()
    logs = [step(batch, state) for _ in range(30)]
    assert float(logs[-1]["rec_loss"]) < 0.7 * float(logs[0]["rec_loss"]), (logs[0], logs[-1])
    assert float(logs[-1]["d_loss"]) < float(logs[0]["d_loss"])
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs[-1].values())


# ---- trainer, resume, checkpoints ----------------------------------------------------------
def run(folder, epochs, cfg=None, faces=None):
    torch.manual_seed(0)
    cfg = cfg or tiny_cfg()
    faces = faces or tiny_faces(16)
    trainer, nets = fader.build_trainer(cfg, faces, "cpu", folder, sample_faces=faces.head(2), live=False,
                                        progress=False, log_every=1, keep_best=fader.KEEP_BEST,
                                        epoch_end_fn=fader.val_tracker(tiny_oracle(), faces, 16))
    state = trainer.fit(epochs)
    return trainer, nets, state


def test_training_keeps_best_and_periodic_checkpoints_and_resumes_exactly(tmp_path):
    _, straight, st = run(tmp_path / "a", 2)
    assert st.stopped == "done" and len(st.samples) == 2
    assert st.samples[-1].shape == (2 * (2 + len(ATTRS)), 3, 16, 16)  # originals, recons, one row per flip
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"last.pt", "best_recon_mse.pt", "best_swap_accuracy.pt", "epoch_0001.pt", "epoch_0002.pt"} <= names
    assert set(st.epoch_metrics[0]) >= {"recon_mse", "swap_accuracy", "latent_disc_accuracy"}
    run(tmp_path / "b", 1)
    _, resumed, _ = run(tmp_path / "b", 2)
    for k in ("E", "G", "D"):
        for p, q in zip(straight[k].state_dict().values(), resumed[k].state_dict().values()):
            assert torch.equal(p, q), k


def test_a_checkpoint_of_other_attributes_is_refused_with_a_clear_message(tmp_path):
    run(tmp_path, 1)
    other = tiny_cfg(attrs=("Smiling", "Young"))
    with pytest.raises(CheckpointMismatch, match="attrs"):
        run(tmp_path, 2, cfg=other, faces=tiny_faces(names=other.attrs))
    with pytest.raises(CheckpointMismatch, match="attrs.*Eyeglasses"):
        fader.load_nets(tmp_path / "last.pt", other)
    nets = fader.load_nets(tmp_path / "best_swap_accuracy.pt", tiny_cfg())
    assert not nets["G"].training
    fader.load_nets(tmp_path / "last.pt", tiny_cfg(residual_strength=3.0, val_images=8))  # run settings never refuse


def test_select_model_takes_the_best_checkpoint_or_the_final_weights_before_any_epoch_ended(tmp_path, capsys):
    trainer, nets, _ = run(tmp_path / "a", 1)
    chosen, name = fader.select_model(tmp_path / "a", nets, tiny_cfg())
    assert name == "best_swap_accuracy.pt" and chosen is not nets and not chosen["G"].training
    best = torch.load(tmp_path / "a" / "best_swap_accuracy.pt", weights_only=False)["modules"]["G"]
    assert all(torch.equal(best[k], v) for k, v in chosen["G"].state_dict().items())
    chosen, name = fader.select_model(tmp_path / "empty", nets, tiny_cfg())  # stopped inside epoch 1
    assert name == "final weights" and chosen is nets and not nets["E"].training
    assert "no best_swap_accuracy.pt (no epoch was judged" in capsys.readouterr().out


def test_faces_without_the_configs_attributes_are_refused_naming_those_they_have():
    faces = tiny_faces(names=("Smiling", "Male"))
    with pytest.raises(DataError, match="'Eyeglasses'; this data set has: Smiling, Male"):
        fader.build_trainer(tiny_cfg(), faces, "cpu", None)


# ---- evaluation ----------------------------------------------------------------------------
def test_evaluate_reports_every_number_in_range():
    torch.manual_seed(0)
    nets = fader.build_networks(tiny_cfg())
    r = fader.scores(nets, tiny_oracle(), tiny_faces(), n=20)
    assert set(r["swap_accuracy"]) == {*ATTRS, "mean"} and r["n_images"] == 20
    for v in [*r["swap_accuracy"].values(), r["preserve_accuracy"], r["latent_disc_accuracy"], r["latent_disc_chance"]]:
        assert 0 <= v <= 1
    assert r["latent_disc_chance"] >= 0.5 and np.isfinite(r["recon_psnr"])
    assert "swap" in fader.summary_row(r)
    f = tiny_faces()
    wider = FaceSet(f.images, torch.cat([torch.ones(len(f), 1), f.attrs], 1), ["Young", *ATTRS], "w", "w", "test")
    judged = fader.evaluate(nets, tiny_cfg(), Judges(tiny_oracle()), wider, 20)
    assert judged["swap_accuracy"] == r["swap_accuracy"]  # evaluate selects the model's attributes
    # identity by the attribute flipped (face i flips attribute i mod n): those rates average to the whole
    per_attr, n_attr = judged["identity_kept_per_attr"], len(ATTRS)
    assert list(per_attr) == list(ATTRS) and all(0 <= v <= 1 for v in per_attr.values())
    counts = [len(range(j, 20, n_attr)) for j in range(n_attr)]
    assert abs(sum(c * v for c, v in zip(counts, per_attr.values())) / 20 - judged["identity_kept"]) < 1e-6
    assert 0 <= judged["identity_kept_recon"] <= 1


def test_refined_codes_rebuild_the_faces_closer_and_keep_their_shape():
    torch.manual_seed(0)
    nets = {k: m.eval() for k, m in fader.build_networks(tiny_cfg()).items()}
    y = tiny_faces(20).attrs
    with torch.no_grad():  # faces the decoder draws from latents its encoder does not give
        x = nets["G"](torch.randn(20, nets["E"].out_channels, 2, 2) * 2, y)
    z0, z = fader.codes(nets, x, y), fader.codes(nets, x, y, steps=20, lr=0.05)
    err = lambda zz: float((fader.decode(nets["G"], zz, y) - x).pow(2).mean())  # noqa: E731
    assert torch.equal(z0, fader.encode(nets["E"], x)) and z.shape == z0.shape
    assert err(z) < 0.5 * err(z0)
    # the adversarial term: the latent discriminator's reading of the true attributes falls
    z_adv = fader.codes(nets, x, y, steps=20, lr=0.05, adversarial=10.0)
    assert fader.latent_accuracy(nets["D"], z_adv, y).mean() < fader.latent_accuracy(nets["D"], z, y).mean()
    drawn = FaceSet(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), y, list(ATTRS), "g", "g", "test")
    z_drawn = fader.codes(nets, to_range(drawn.images), y, steps=20, lr=0.05)
    refined = fader.scores(nets, tiny_oracle(), drawn, z=z_drawn)
    assert refined["recon_psnr"] > fader.scores(nets, tiny_oracle(), drawn)["recon_psnr"] + 1


def test_a_lean_set_ships_no_latent_discriminator_and_runs_without_it(tmp_path):
    """The celeba set leaves D out (published.LEAN, its size): loading gives nets without D, the refinement
    runs on pixels alone (as with adversarial=0), and the numbers say there is no D to read."""
    from helpers.core import published

    faces = tiny_faces(16)
    cfg = tiny_cfg(refine_steps=5, refine_adversarial=10.0)
    trainer, nets, _ = run(tmp_path / "ck", 1, cfg, faces)
    published.export({"fader": trainer}, notebook="02_fadernet", model="fader", set_name="celeba", profile="smoke",
                     data="synthetic", folder=tmp_path / "pub")
    weights = published.open_set("02_fadernet", "celeba", folder=tmp_path / "pub")
    assert weights.shipped("fader") == {"E", "G"}
    _, loaded, _ = fader.train_run(cfg, faces, faces, tiny_oracle(), "cpu", tmp_path / "other", None, weights=weights,
                                   live=False, progress=False)
    assert set(loaded) == {"E", "G"}
    x, y = to_range(faces.images[:4]), faces.attrs[:4]
    torch.manual_seed(0)
    lean = fader.codes(loaded, x, y, *cfg.refine)
    torch.manual_seed(0)
    plain = fader.codes(loaded, x, y, steps=5, lr=cfg.refine_lr)
    assert torch.equal(lean, plain)
    r = fader.scores(loaded, tiny_oracle(), faces, n=8)
    assert r["latent_disc_accuracy"] is None and "no D" in fader.summary_row(r)


def test_swap_accuracy_counts_flipped_readouts():
    class FlipOracle:  # reads 'Male' from the image's mean brightness
        attr_names = ["Male", "Young"]

        def predict(self, x):
            return torch.stack([(x.mean((1, 2, 3)) > 0).float(), torch.zeros(len(x))], 1)

    class Bright(torch.nn.Module):  # decodes brightness = Male attribute (perfect fader)
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))  # decode() asks for the device

        def forward(self, z, y):
            return (y[:, :1, None, None] * 2 - 1).expand(-1, 3, 16, 16).clone()

    cfg = tiny_cfg(attrs=("Male",))
    E, _, D = fader.build_networks(cfg).values()
    f = tiny_faces(names=("Male",))
    f.images[:] = torch.where(f.attrs[:, :1, None, None] > 0.5, 255, 0).to(torch.uint8)
    r = fader.scores({"E": E, "G": Bright(), "D": D}, FlipOracle(), f)
    assert r["swap_accuracy"]["Male"] == 1.0 and r["preserve_accuracy"] == 1.0 and r["recon_psnr"] == float("inf")
    assert r["swap_accuracy_residual"]["Male"] == 1.0  # the photo plus the full change flips too
    weak = fader.scores({"E": E, "G": Bright(), "D": D}, FlipOracle(), f, strength=0.25)
    assert weak["swap_accuracy_residual"]["Male"] == 0.0 and weak["swap_accuracy"]["Male"] == 1.0  # a quarter does not


# ---- pictures, upload, sliders -------------------------------------------------------------
@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {k: m.eval() for k, m in fader.build_networks(tiny_cfg()).items()}


def test_sweep_figure_has_original_recon_and_each_value(nets):
    f = tiny_faces(3)
    pic = fader_widgets.render_sweep(nets, to_range(f.images[:3]), f.attrs[:3], 0)
    cols = 2 + len(fader_widgets.SWEEP)
    assert pic.dtype == np.uint8 and pic.shape == (3 * 18 + 2, cols * 18 + 2, 3)
    refined = fader_widgets.render_sweep(nets, to_range(f.images[:3]), f.attrs[:3], 0, refine=(5, 0.05, 0.01))
    assert refined.shape == pic.shape and not np.array_equal(refined[:, 18:], pic[:, 18:])
    assert np.array_equal(refined[:, :18], pic[:, :18])  # the originals stay


def image_bytes(fmt, size=(40, 24), mode="RGB"):
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, :10] = (255, 0, 0)  # a red band on the left, cropped away by the centre crop
    arr[:, 10:30] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("JPEG", "RGB"), ("PNG", "L"), ("PNG", "RGBA")])
def test_upload_is_decoded_centre_cropped_and_resized(fmt, mode):
    x = H.widgets.decode_upload(image_bytes(fmt, mode=mode), 16, align=False)[None]
    assert x.shape == (1, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    if mode == "RGB":  # 40x24 -> the centre 24x24 (columns 8..31): blue apart from thin bands
        assert x[0, 2].mean() > 0.5 and x[0, 0].mean() < 0


def test_a_bad_upload_says_what_to_use(nets):
    with pytest.raises(ValueError, match="JPEG or PNG"):
        H.widgets.decode_upload(b"not an image", 16)
    with pytest.raises(ValueError, match="empty"):
        H.widgets.decode_upload(b"", 16)


def test_render_upload_changes_with_the_attribute_values(nets):
    data = image_bytes("PNG")
    a, _ = fader_widgets.render_upload(nets, data, [0, 0, 0], 16, align=False)
    b, _ = fader_widgets.render_upload(nets, data, [0, 2, 0], 16, align=False)
    assert a.shape == (20, 38, 3) and not np.array_equal(a, b)
    assert np.array_equal(a[:, :19], b[:, :19])  # the original half stays


def test_the_upload_is_aligned_before_it_is_edited(nets):
    pytest.importorskip("dlib")
    data = png_bytes(astronaut())
    x, _own, _z, note = fader_widgets.upload_face(nets, data, 16)
    assert note.startswith("aligned: face ") and torch.equal(x[0], widgets.read_upload(data, 16)[0])
    plain = fader_widgets.upload_face(nets, data, 16, align=False)
    assert plain[3].startswith("not aligned") and not torch.equal(plain[0], x)
    with pytest.raises(ValueError, match="no face found in the upload"):
        fader_widgets.render_upload(nets, image_bytes("PNG"), [0, 0, 0], 16)


def test_residual_edit_at_the_own_attributes_is_the_photo_and_moves_with_the_sliders(nets):
    f = tiny_faces()
    x, own = to_range(f.images[5:6]), f.attrs[5]
    same, _ = fader_widgets.render_fader(nets, x, own.tolist(), own=own)
    assert np.array_equal(same[2:18, 2:18], same[2:18, 20:36])  # nothing asked: the edit is the photo
    moved, _ = fader_widgets.render_fader(nets, x, (own + torch.tensor([2.0, 0, 0])).tolist(), own=own)
    plain, _ = fader_widgets.render_fader(nets, x, (own + torch.tensor([2.0, 0, 0])).tolist())
    assert not np.array_equal(moved, same) and not np.array_equal(moved, plain)


def test_upload_bytes_reads_both_ipywidgets_formats():
    assert H.widgets.upload_bytes(({"name": "a.png", "content": memoryview(b"xy")},)) == b"xy"
    assert H.widgets.upload_bytes({"a.png": {"content": b"xy"}}) == b"xy"
    assert H.widgets.upload_bytes(()) is None


def upload_entry(name, data):
    """What ipywidgets 8's FileUpload holds after the browser sends a file."""
    import datetime as dt

    return {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
            "last_modified": dt.datetime.fromtimestamp(0, tz=dt.timezone.utc)}


@pytest.mark.parametrize("refine", [(0,), (2, 0.05, 0.01)])
def test_every_slider_and_the_upload_change_the_picture(nets, refine):
    w = fader_widgets.fader_sliders(nets, tiny_faces(), tiny_oracle(), refine=refine, residual=False)
    c = w.controls
    for name in ATTRS:
        s, before = c[name], w.image.value
        s.value = s.value + 1.0 if s.value + 1.0 <= s.max else s.value - 1.0
        assert w.image.value != before, s.description
    before = w.image.value
    c["pick"].value = 5
    assert w.image.value != before
    before = w.image.value
    w.buttons["reset to the face's own attributes"].click()
    assert w.image.value != before and [c[n].value for n in ATTRS] == tiny_faces().attrs[5].tolist()
    before = w.image.value
    c["residual"].value = True  # own attributes: the residual edit is the photo itself
    assert w.image.value != before
    before = w.image.value
    c["upload"].set_trait("value", (upload_entry("me.png", png_bytes(astronaut())),))
    assert w.image.value != before and "your image" in w.readout.value and "aligned: face" in w.readout.value
    before = w.image.value
    c["align"].value = False  # the same photo, only centre-cropped
    assert w.image.value != before and "not aligned" in w.readout.value
    c["align"].value = True
    c["upload"].set_trait("value", (upload_entry("bands.png", image_bytes("PNG")),))
    assert "no face found in the upload" in w.readout.value
    before = w.image.value
    c["align"].value = False  # the switch reads the face-less upload again, unaligned
    assert w.image.value != before and "not aligned" in w.readout.value
    c["upload"].set_trait("value", (upload_entry("x.png", b"junk"),))
    assert "JPEG or PNG" in w.readout.value


def test_the_sliders_start_with_residual_edits_that_show_the_photo_until_moved(nets):
    w = fader_widgets.fader_sliders(nets, tiny_faces(), tiny_oracle())
    assert w.controls["residual"].value is True
    photo_only = w.image.value  # the face's own attributes: the residual edit is the photo itself
    w.controls["residual"].value = False  # the decoder's own redraw
    assert w.image.value != photo_only
    w.controls["residual"].value = True
    assert w.image.value == photo_only


def test_ablation_chart_draws_one_bar_per_model_and_attribute():
    ax = fader_widgets.ablation_chart({"fader": {"Smiling": 0.9, "mean": 0.9}, "no D": {"Smiling": 0.2, "mean": 0.2}})
    assert len(ax.patches) == 4


def test_config_round_trips_into_the_checkpoint_dict():
    cfg = fader.config_for("demo", attrs=["Male"])
    assert asdict(cfg)["attrs"] == ("Male",) and fader.PRESETS["full"].img_size == 256
    assert fader.PRESETS["full"].lambda_lat == 1e-4 and fader.PRESETS["full"].lambda_schedule == 500_000
    full = fader.PRESETS["full"]
    assert full.epochs * full.epoch_images == 1000 * 50_000  # the official schedule: 1000 epochs of 50,000
    assert all(c.ablation_seconds for c in fader.PRESETS.values())  # the notebook labels bars with it
