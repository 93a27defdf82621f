"""Published weight sets: a file loads only when it is the one MANIFEST.json lists, and fits."""
import pytest
import torch

from helpers.core import published
from helpers.core.published import PublishedError
from helpers.data.faces import load_faces
from helpers.models import dcgan
from tests.fixtures import make_celeba

NB = "01_dcgan_face_generation"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = make_celeba(tmp_path_factory.mktemp("faces") / "celeba", n=40)
    return load_faces(root, dcgan.config_for("smoke").img_size, split="train")


def trainer_for(faces, tmp, seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = dcgan.config_for("smoke", **overrides)
    return dcgan.build_trainer(cfg, faces, "cpu", tmp, live=False, progress=False)


@pytest.fixture
def folder(tmp_path, faces):
    trainer, nets = trainer_for(faces, tmp_path / "ck")
    trainer.fit(1, steps=3)
    entry = published.export({"dcgan": trainer}, notebook=NB, model="dcgan", set_name="synthetic", profile="smoke",
                             data="synthetic", drop={"dcgan": ("D",)}, folder=tmp_path / "pub")
    assert entry["sha256"] == published.sha256(tmp_path / "pub" / entry["file"]) and entry["bytes"] > 0
    assert "terms" not in entry  # synthetic faces carry no data terms
    assert trainer.state.step > 0 and entry["images_seen"] == trainer.state.step * trainer.global_batch and entry["parts"] == ["dcgan"]
    return tmp_path / "pub", trainer


def test_a_set_loads_into_a_fresh_trainer_in_half_precision_with_its_record(folder, faces, tmp_path):
    path, trained = folder
    weights = published.open_set(NB, "synthetic", folder=path)
    fresh, nets = trainer_for(faces, tmp_path / "fresh", seed=1)
    state = published.fit(fresh, weights, epochs=99)  # loads; trains nothing
    assert state.step == trained.state.step and state.history == trained.state.history and fresh.state is state
    for (k, a), b in zip(trained.modules["G_ema"].state_dict().items(), nets["G_ema"].state_dict().values()):
        assert torch.equal(b, a.half().to(b.dtype) if a.is_floating_point() else a), k
    assert set(weights.payload["parts"]["dcgan"]["modules"]) == {"G_ema"}  # D dropped; G: the average draws
    assert published.open_set(NB, None, folder=path) is None  # None: train here
    published.set_numbers(NB, "synthetic", {"fid": 42.0}, folder=path)
    text = published.card_markdown({**weights.payload, "card": published.find(NB, "synthetic", path)})
    assert f"{trained.state.step * trained.global_batch} images seen" in text and "fid 42" in text and "smoke profile" in text


def test_a_changed_byte_is_refused_naming_the_file_and_the_fix(folder):
    path, _ = folder
    f = path / "synthetic" / f"{NB}.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(PublishedError, match=rf"{NB}.pt is damaged or was changed.*git checkout"):
        published.open_set(NB, "synthetic", folder=path)


def test_a_truncated_file_is_refused(folder):
    path, _ = folder
    f = path / "synthetic" / f"{NB}.pt"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(PublishedError, match=r"damaged or was changed.*\(1,000 of [\d,]+ bytes\)"):
        published.open_set(NB, "synthetic", folder=path)


def test_a_missing_file_and_an_unknown_set_say_what_there_is(folder):
    path, _ = folder
    with pytest.raises(PublishedError, match=r"no published set 'celeba' for 01_dcgan.*its sets are 'synthetic'"):
        published.open_set(NB, "celeba", folder=path)
    with pytest.raises(PublishedError, match="it has none yet"):
        published.open_set("02_fadernet", "synthetic", folder=path)
    (path / "synthetic" / f"{NB}.pt").unlink()
    with pytest.raises(PublishedError, match="listed in MANIFEST.json but missing"):
        published.open_set(NB, "synthetic", folder=path)


def test_a_config_or_part_that_does_not_fit_is_refused(folder, faces, tmp_path):
    path, _ = folder
    weights = published.open_set(NB, "synthetic", folder=path)
    other, _ = trainer_for(faces, tmp_path / "a", g_conv_dim=32)
    with pytest.raises(PublishedError, match=r"trained with g_conv_dim 16 \(here 32\).*profile \('smoke'\)"):
        weights.load(other)
    same, _ = trainer_for(faces, tmp_path / "b", max_seconds=1)  # a run-only field: fine
    weights.load(same)
    with pytest.raises(PublishedError, match=r"has no part 'direct' \(it has dcgan\)"):
        weights.load(same, part="direct")


def test_the_environment_names_a_set_where_the_cell_says_none(folder, monkeypatch, capsys):
    path, _ = folder
    monkeypatch.setenv(published.PRETRAINED_ENV, "synthetic")
    assert published.open_set(NB, None, folder=path).name == "synthetic"
    assert "pretrained 'synthetic', from FACEGAN_PRETRAINED" in capsys.readouterr().out


def test_a_shipped_oracle_judges_its_own_faces_only(faces, tmp_path, monkeypatch):
    from helpers.core import paths
    from helpers.eval import oracle as O

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "ck")
    model, report = O.train_oracle(faces, faces, device="cpu", seconds=1)
    shipped = {"version": O.CACHE_VERSION, "key": str(faces.key), "config": model.config, "report": report,
               "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
               "faces": faces.digest()}
    loaded, rep = O.load_or_train_oracle(faces, faces, device="cpu", shipped=shipped)
    assert rep == report and not O.oracle_cache_path(faces).exists()  # used as it is, no training
    x = faces.images[:2].float() / 127.5 - 1
    assert torch.allclose(loaded(x), model.eval()(x), atol=0.05)
    _, rep = O.load_or_train_oracle(faces, faces, device="cpu", shipped={**shipped, "faces": "other faces"}, seconds=1)
    assert rep is not report and O.oracle_cache_path(faces).exists()  # another set's judge: trained here


def test_a_shipped_oracle_follows_its_faces_to_another_clone(faces, tmp_path, monkeypatch):
    import shutil

    from helpers.core import paths
    from helpers.eval import oracle as O

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "ck")
    clone = load_faces(shutil.copytree(make_celeba(tmp_path / "a" / "celeba", n=40), tmp_path / "b" / "celeba"),
                       faces.image_size, split="train")
    assert clone.key != faces.key and clone.digest() == faces.digest()  # another path; the same faces
    assert faces.head(9).digest(n=8) == faces.digest(n=8)  # a max_images cut of them too
    other = faces.subset(slice(1, None))  # the same cache key, other faces
    assert other.key == faces.key and other.digest() != faces.digest()
    model, report = O.train_oracle(faces, faces, device="cpu", seconds=1)
    shipped = {"version": O.CACHE_VERSION, "key": str(faces.key), "config": model.config, "report": report,
               "state_dict": model.state_dict(), "faces": faces.digest()}
    assert O.load_or_train_oracle(clone, clone, device="cpu", shipped=shipped)[1] == report
    assert not O.oracle_cache_path(clone).exists()
    assert O.load_or_train_oracle(other, other, device="cpu", shipped=shipped, seconds=1)[1] is not report


def test_data_without_labels_edits_faces_the_sets_dcgan_draws_judged_by_its_oracle(tmp_path, monkeypatch):
    from helpers.core import paths
    from helpers.data.faces import to_range
    from helpers.data.sources import DataError
    from helpers.eval import oracle as O

    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "ck")
    with pytest.raises(DataError, match="pretrained='synthetic'"):  # training needs the labels
        published.faces_to_edit("lfw100", 32, ["Smiling"])
    w = published.open_set("02_fadernet", "synthetic")  # the committed set
    train, valid, test = published.faces_to_edit("lfw100", 32, ["Smiling", "Male"], w)
    assert [len(f) for f in (train, valid, test)] == [1000, 200, 500] and (test.channels, test.image_size) == (3, 32)
    assert train.identity is None and len({f.digest() for f in (train, valid, test)}) == 3
    assert 0.2 < float(test.attr("Smiling").mean()) < 0.8  # the oracle's labels, both classes
    oracle, _ = O.load_or_train_oracle(train, valid, device="cpu", shipped=w.oracle(), seconds=1)
    assert not O.oracle_cache_path(train).exists()  # the set's oracle judges the faces it labelled: none trained
    agree = ((oracle.predict(to_range(test.images)) > 0.5).float() == test.attrs).float().mean()
    assert agree > 0.98, agree  # the labels are its reading (the uint8 rounding may flip a borderline one)
    small = w.generated_faces(16, sizes={"test": 4}, seed=1)[0]
    assert small.images.shape == (4, 3, 16, 16) and small.key != test.key


def test_a_set_at_another_size_brings_its_size_to_the_notebook(tmp_path):
    """A `celeba` set is 64 px where the profile's preset is 32: the notebook builds what the set holds."""
    from helpers.models import smile

    big = load_faces(make_celeba(tmp_path / "faces64", n=40), 64, split="train")
    trainer, _ = trainer_for(big, tmp_path / "ck", img_size=64)
    trainer.fit(1, steps=1)
    entry = published.export({"dcgan": trainer}, notebook=NB, model="dcgan", set_name="celeba", profile="smoke",
                             data="/x/celeba_dev:/x/celeba_hq_dev", drop={"dcgan": ("D",)}, folder=tmp_path / "pub")
    weights = published.open_set(NB, "celeba", folder=tmp_path / "pub")
    assert entry["img_size"] == 64 and "non-commercial research" in weights.card().data  # CelebA's terms travel
    assert entry["data"] == "celeba_dev+celeba_hq_dev"  # folder names, not this machine's paths
    cfg = published.config(dcgan, weights, "demo")  # the set's profile, at the set's size
    assert cfg == dcgan.config_for("smoke", img_size=64)
    assert published.config(dcgan, weights, "demo", 64, lr=1e-3).lr == 1e-3
    fresh, _ = trainer_for(big, tmp_path / "fresh", img_size=64)
    assert published.fit(fresh, weights, epochs=9).step == 1  # it fits the networks that config builds
    with pytest.raises(PublishedError, match="'celeba' of 01_dcgan_face_generation is 64 px, not img_size=32"):
        published.config(dcgan, weights, "demo", 32)
    # training here: the profile's preset, at img_size when given (SMiLE's lives in its two GANs)
    assert published.config(dcgan, None, "demo") == dcgan.config_for("demo")
    assert published.config(dcgan, None, "demo", 64).img_size == 64
    assert published.config(smile, None, "demo", 64).img_size == 64
    assert published.config(smile, None, "demo", 64).wacgan.img_size == 64


def test_a_long_runs_sample_grids_are_thinned_and_the_viewer_says_which_it_shows():
    from helpers.ui import widgets

    grids = [torch.full((4, 3, 8, 8), e, dtype=torch.uint8) for e in range(39)]
    thin = published.thin_samples(grids)
    kept = [i + 1 for i, g in enumerate(thin) if g is not None]
    assert len(thin) == 39 and len(kept) == published.KEPT_SAMPLE_EPOCHS
    assert {1, 39 // 4, 39 // 2, 39} <= set(kept)  # the epochs notebooks 01 and 04 draw in their figures
    assert published.thin_samples(grids[:5]) == grids[:5]  # a short run keeps every grid
    assert widgets.kept_epoch(thin, 39) == 39 and widgets.kept_epoch(thin, 3) == max(e for e in kept if e <= 3)
    assert (widgets.render_epoch(thin, 3) == widgets.render_epoch(grids, widgets.kept_epoch(thin, 3))).all()
    box = widgets.epoch_viewer(thin)
    box.controls["epoch"].value = 3
    assert "epoch 3: not kept" in box.readout.value and f"keeps {len(kept)} of 39" in box.readout.value
    box.controls["epoch"].value = 39
    assert box.readout.value == ""


def test_the_celeba_set_stores_int8_weights_that_load_back_within_one_step_of_their_scale(tmp_path):
    """int8 halves a set's bytes (PRECISION); the loaded network is within half a quantization step."""
    big = load_faces(make_celeba(tmp_path / "faces64", n=40), 64, split="train")
    trainer, _ = trainer_for(big, tmp_path / "ck", img_size=64)
    trainer.fit(1, steps=1)
    sizes = {}
    for set_name in ("synthetic", "celeba"):
        entry = published.export({"dcgan": trainer}, notebook=NB, model="dcgan", set_name=set_name, profile="smoke",
                                 data="synthetic", drop={"dcgan": ("D",)}, folder=tmp_path / "pub")
        sizes[entry["precision"]] = entry["bytes"]
    assert set(sizes) == {"fp16", "int8"} and sizes["int8"] < 0.7 * sizes["fp16"]
    fresh, nets = trainer_for(big, tmp_path / "fresh", img_size=64, seed=1)
    published.fit(fresh, published.open_set(NB, "celeba", folder=tmp_path / "pub"), epochs=9)
    quantized = 0
    for k, a in trainer.modules["G_ema"].state_dict().items():
        b = nets["G_ema"].state_dict()[k]
        if not a.is_floating_point():
            assert torch.equal(a, b), k
        elif a.dim() >= 2 and a.numel() >= published.QUANTIZE_MIN:
            step = a.abs().amax(dim=tuple(range(1, a.dim())), keepdim=True) / 127
            assert ((a - b).abs() <= 0.51 * step + 1e-3 * step.max()).all(), k
            quantized += 1
        else:
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k  # fp16
    assert quantized >= 3
    with pytest.raises(ValueError, match="use 'fp16' or 'int8'"):
        published.quantize(torch.ones(64, 64), "int4")


def test_settings_from_the_environment_steer_a_run_that_trains_and_never_a_published_set(tmp_path, monkeypatch):
    """`make publish-real CONFIG=...` (FACEGAN_SET) gives a long run's parts their budgets."""
    from helpers.core.config import SETTINGS_ENV
    from helpers.core.runtime import environment_overrides
    from helpers.models import smile

    monkeypatch.setenv(SETTINGS_ENV, "encoder_after.max_seconds=600; wacgan.max_seconds=300")
    cfg = published.config(smile, None, "demo", 64)
    assert cfg.encoder_after.max_seconds == 600 and cfg.wacgan.max_seconds == 300
    assert cfg.acgan.img_size == cfg.wacgan.img_size == 64  # merged with the size, not instead of it
    assert cfg.encoder_before == smile.config_for("demo").encoder_before
    assert published.config(smile, None, "demo", 64, wacgan={"lr": 1e-4}).wacgan.max_seconds == 300
    assert any(SETTINGS_ENV in line for line in environment_overrides("demo"))
    faces = load_faces(make_celeba(tmp_path / "faces", n=40), 32, split="train")
    trainer, _ = trainer_for(faces, tmp_path / "ck")
    trainer.fit(1, steps=1)
    published.export({"dcgan": trainer}, notebook=NB, model="dcgan", set_name="synthetic", profile="smoke",
                     data="synthetic", drop={"dcgan": ("D",)}, folder=tmp_path / "pub")
    monkeypatch.setenv(SETTINGS_ENV, "lr=0.5")
    assert published.config(dcgan, published.open_set(NB, "synthetic", folder=tmp_path / "pub"), "demo").lr != 0.5
    # the run's model settings travel with the set (budgets and other models' keys do not), and a
    # notebook opened on it builds that model: BEGAN's gamma 1.0 against the preset's 0.7
    monkeypatch.setenv(SETTINGS_ENV, "lr=0.001; max_seconds=600; wacgan.lr=0.1; epochs=3")
    entry = published.export({"dcgan": trainer}, notebook=NB, model="dcgan", set_name="synthetic", profile="smoke",
                             data="synthetic", drop={"dcgan": ("D",)}, folder=tmp_path / "pub")
    assert entry["settings"] == ["lr=0.001"]
    monkeypatch.delenv(SETTINGS_ENV)
    assert published.config(dcgan, published.open_set(NB, "synthetic", folder=tmp_path / "pub"), "demo").lr == 0.001
    monkeypatch.setenv(SETTINGS_ENV, "lr")
    with pytest.raises(ValueError, match="FACEGAN_SET: 'lr': use KEY=VALUE"):
        published.config(dcgan, None, "demo")


def test_only_the_sample_grids_a_notebook_shows_ship(folder, tmp_path):
    """Fader's grids rebuild its training faces: a set trained on real faces must not carry them."""
    path, trained = folder
    shown = published.open_set(NB, "synthetic", folder=path).payload["parts"]["dcgan"]["state"]["samples"]
    assert len(shown) == len(trained.state.samples) > 0
    published.export({"fader": trained}, notebook="02_fadernet", model="fader", set_name="celeba", profile="smoke",
                     data="/x/celeba_dev", folder=tmp_path / "pub2")
    assert published.open_set("02_fadernet", "celeba", folder=tmp_path / "pub2").payload["parts"]["fader"]["state"]["samples"] == []


def test_the_demo_bounds_apply_to_models_of_the_synthetic_faces_only(folder):
    """A `celeba` set opened on the synthetic faces is far from them by design: its notebook does not fail."""
    path, _ = folder
    synthetic = published.open_set(NB, "synthetic", folder=path)
    assert published.demo_checks("demo", "synthetic", None) and published.demo_checks("demo", "synthetic", synthetic)
    assert not published.demo_checks("smoke", "synthetic", None) and not published.demo_checks("demo", "lfw100", None)
    synthetic.entry = {**synthetic.entry, "data": "celeba_dev+celeba_hq_dev"}
    assert not published.demo_checks("demo", "synthetic", synthetic)
