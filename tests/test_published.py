"""Published weight sets: a file loads only when it is the one MANIFEST.json lists, and fits."""
import json

import pytest
import torch

from helpers.core import published
from helpers.core.published import PublishedError
from helpers.core.train import TrainState
from helpers.models import dcgan

NB = "01_dcgan_face_generation"


def nets(seed=0):
    torch.manual_seed(seed)
    cfg = dcgan.config_for("smoke")
    D, G = dcgan.build_network(cfg.d_conv_dim, cfg.g_conv_dim, cfg.z_dim, img_size=cfg.img_size)
    return cfg, {"G": G, "D": D}


@pytest.fixture
def folder(tmp_path):
    cfg, trained = nets(0)
    state = TrainState(epoch=2, step=30, seconds=12.5, history={"step": [10, 20], "g_loss": [1.0, 0.8]},
                       samples=[torch.zeros(4, 3, 8, 8, dtype=torch.uint8)])
    entry = published.export(trained, notebook=NB, model="dcgan", set_name="synthetic", config=cfg,
                             card={"data": "synthetic", "images_seen": 960, "train_seconds": 12.5, "img_size": 32,
                                   "numbers": {"fid": 42.0}}, state=state, folder=tmp_path)
    assert entry["sha256"] == published.sha256(tmp_path / entry["file"]) and entry["bytes"] > 0
    return tmp_path, trained


def test_a_set_loads_into_fresh_networks_in_half_precision(folder):
    path, trained = folder
    cfg, fresh = nets(1)
    payload = published.load(NB, "synthetic", fresh, cfg, folder=path)
    for name in trained:
        for a, b in zip(trained[name].state_dict().values(), fresh[name].state_dict().values()):
            want = a.half().float() if a.is_floating_point() else a
            assert torch.equal(b.float() if b.is_floating_point() else b, want.to(b.dtype) if b.is_floating_point() else want)
    assert payload["state"]["history"]["g_loss"] == [1.0, 0.8] and payload["state"]["samples"][0].shape == (4, 3, 8, 8)
    assert "960 images seen" in published.card_markdown(payload) and "fid 42" in published.card_markdown(payload)


def test_a_changed_byte_is_refused_naming_the_file_and_the_fix(folder):
    path, _ = folder
    f = path / "synthetic" / f"{NB}.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(PublishedError, match=rf"{NB}.pt is damaged or was changed.*git checkout"):
        published.load(NB, "synthetic", nets()[1], folder=path)


def test_a_truncated_file_is_refused(folder):
    path, _ = folder
    f = path / "synthetic" / f"{NB}.pt"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(PublishedError, match=r"damaged or was changed.*\(1,000 of [\d,]+ bytes\)"):
        published.load(NB, "synthetic", nets()[1], folder=path)


def test_a_missing_file_and_an_unknown_set_say_what_there_is(folder):
    path, _ = folder
    with pytest.raises(PublishedError, match=r"no published set 'celeba' for 01_dcgan.*its sets are 'synthetic'"):
        published.load(NB, "celeba", nets()[1], folder=path)
    with pytest.raises(PublishedError, match="it has none yet"):
        published.load("02_fadernet", "synthetic", nets()[1], folder=path)
    (path / "synthetic" / f"{NB}.pt").unlink()
    with pytest.raises(PublishedError, match="listed in MANIFEST.json but missing"):
        published.load(NB, "synthetic", nets()[1], folder=path)


def test_a_config_or_network_that_does_not_fit_is_refused(folder):
    path, _ = folder
    cfg, fresh = nets()
    with pytest.raises(PublishedError, match=r"trained with g_conv_dim 16 \(here 32\)"):
        published.load(NB, "synthetic", fresh, dcgan.config_for("smoke", g_conv_dim=32), folder=path)
    published.load(NB, "synthetic", fresh, dcgan.config_for("smoke", max_seconds=1), folder=path)  # run-only: fine
    with pytest.raises(PublishedError, match=r"holds no weights for \['E'\]"):
        published.load(NB, "synthetic", {"E": torch.nn.Linear(2, 2)}, folder=path)
    big = dcgan.build_network(16, 32, cfg.z_dim, img_size=cfg.img_size)[1]
    with pytest.raises(PublishedError, match="the weights of G do not fit"):
        published.load(NB, "synthetic", {"G": big}, folder=path)


def test_a_listed_file_that_is_no_weight_set_is_refused(folder):
    path, _ = folder
    f = path / "synthetic" / f"{NB}.pt"
    torch.save({"hello": 1}, f)
    manifest = json.loads((path / "MANIFEST.json").read_text())
    manifest["entries"][0].update(sha256=published.sha256(f), bytes=f.stat().st_size)
    (path / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishedError, match="not a Face GAN Lab weight set"):
        published.load(NB, "synthetic", nets()[1], folder=path)


def test_exporting_again_replaces_the_entry(folder):
    path, trained = folder
    cfg, _ = nets()
    published.export(trained, notebook=NB, model="dcgan", set_name="synthetic", config=cfg, card={}, folder=path)
    published.export(trained, notebook=NB, model="dcgan", set_name="celeba", config=cfg, card={}, folder=path)
    sets = [(e["notebook"], e["set"]) for e in published.read_manifest(path)]
    assert sets == [(NB, "celeba"), (NB, "synthetic")]
