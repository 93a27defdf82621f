"""`make rehearse`: the full profile capped by FACEGAN_REHEARSE, and its CelebA- and LFW-shaped stand-ins."""
import json

import numpy as np
import pytest
from PIL import Image

from helpers.core import paths
from helpers.core.config import REHEARSE_ENV, rehearsal_budget, rehearsal_seconds
from helpers.data import load_faces
from helpers.data.__main__ import main as cli_main
from helpers.data.rehearsal import CELEBA_ATTRIBUTES, write_celeba_sized, write_lfw_sized
from helpers.data.synth import ATTRIBUTES, render_batch
from helpers.eval import oracle as oracle_mod
from helpers.eval import presets
from helpers.models import smile as smile_train
from helpers.tools import run_notebooks

from .test_run_notebooks import tiny_notebook
from .test_train import make_trainer, tiny_faces


def test_no_rehearsal_changes_nothing(monkeypatch):
    monkeypatch.delenv(REHEARSE_ENV, raising=False)
    assert rehearsal_seconds() is None
    assert rehearsal_budget(1000, None) == (1000, None) and rehearsal_budget(5, 60.0, start_epoch=3) == (5, 60.0)


def test_rehearsal_caps_seconds_and_epochs_from_where_a_run_starts(monkeypatch):
    monkeypatch.setenv(REHEARSE_ENV, "20")
    assert rehearsal_seconds() == 20.0
    assert rehearsal_budget(1000, None) == (2, 20.0)  # a budget-less full run gets the cap
    assert rehearsal_budget(1000, 5.0) == (2, 5.0)  # a shorter budget stays
    assert rehearsal_budget(10 ** 6, 3600, start_epoch=7) == (9, 20.0)  # fine-tuning from epoch 7
    assert rehearsal_budget(1, None) == (1, 20.0)
    assert rehearsal_budget(1000, None, start_epoch=2, start_seconds=15.0) == (4, 35.0)  # a resumed run: 20 s more
    assert rehearsal_budget(1000, 30.0, start_epoch=2, start_seconds=15.0) == (4, 30.0)  # within its own budget


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_bad_rehearsal_value_says_what_to_give(monkeypatch, value):
    monkeypatch.setenv(REHEARSE_ENV, value)
    with pytest.raises(ValueError, match="seconds each training run may take"):
        rehearsal_seconds()


def test_evaluation_sizes_are_capped_only_in_a_rehearsal(monkeypatch):
    monkeypatch.delenv(REHEARSE_ENV, raising=False)
    assert presets.config_for("full").fd_samples == 5000 and smile_train.config_for("full").eval_images == 5000
    monkeypatch.setenv(REHEARSE_ENV, "60")
    ev = presets.config_for("full")
    assert (ev.fd_samples, ev.fd_samples_epoch, ev.direction_samples, ev.oracle_seconds) == (500, 250, 1000, 300)
    assert presets.config_for("smoke").fd_samples == 256  # already below the cap
    assert ev.speed_images == 500 and ev.image_size == 64
    assert smile_train.config_for("full").eval_images == 500 and smile_train.config_for("full").acgan.img_size == 64


def test_trainer_stops_after_two_epochs_in_a_rehearsal(tmp_path, monkeypatch):
    monkeypatch.setenv(REHEARSE_ENV, "600")
    trainer, _ = make_trainer(tmp_path)
    st = trainer.fit(epochs=1000)
    assert st.stopped == "done" and st.epoch == 2 and st.step == 12


def test_oracle_training_is_capped_in_a_rehearsal(monkeypatch):
    faces = tiny_faces(n=32, size=8)
    monkeypatch.setenv(REHEARSE_ENV, "1e-6")
    _, report = oracle_mod.train_oracle(faces, faces, device="cpu", seconds=300, max_epochs=30, progress=False)
    assert report["steps"] == 1  # stopped by the cap after its first step, not by 30 epochs


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    root = tmp_path_factory.mktemp("rehearsal")
    return write_celeba_sized(root / "celeba", n=12), write_lfw_sized(root, n=10), write_lfw_sized(root, n=10, crop=True)


def test_celeba_stand_in_has_celebas_shapes_columns_and_the_drawn_labels(stand_ins):
    celeba = stand_ins[0]
    assert len(CELEBA_ATTRIBUTES) == 40 == len(set(CELEBA_ATTRIBUTES))
    assert CELEBA_ATTRIBUTES == sorted(CELEBA_ATTRIBUTES) and set(ATTRIBUTES) <= set(CELEBA_ATTRIBUTES)
    assert CELEBA_ATTRIBUTES[:2] == ["5_o_Clock_Shadow", "Arched_Eyebrows"] and CELEBA_ATTRIBUTES[-1] == "Young"
    files = sorted((celeba / "img_align_celeba").iterdir())
    assert [f.name for f in files[:2]] == ["000001.jpg", "000002.jpg"] and len(files) == 12
    assert Image.open(files[0]).size == (178, 218)
    lines = (celeba / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "12" and lines[1].split() == CELEBA_ATTRIBUTES
    assert len(lines[2].split()) == 41 and set(lines[2].split()[1:]) <= {"1", "-1"}
    faces = load_faces(celeba, 32, split="all", progress=False)
    assert faces.attr_names == CELEBA_ATTRIBUTES and len(faces) == 12
    _, drawn = render_batch(0, 0, 12, 16)  # the renderer's own labels, whatever the image size
    for j, name in enumerate(ATTRIBUTES):
        assert np.array_equal(faces.attrs[:, CELEBA_ATTRIBUTES.index(name)].numpy().astype(int), drawn[:, j])
    splits = [len(load_faces(celeba, 32, split=s, progress=False)) for s in ("train", "valid", "test")]
    assert sum(splits) == 12 and min(splits) >= 1


def test_celeba_stand_in_frames_the_face_in_the_central_square(stand_ins):
    celeba = stand_ins[0]
    img = np.asarray(Image.open(celeba / "img_align_celeba" / "000001.jpg")).astype(int)
    face, _ = render_batch(0, 0, 1, 178)
    assert np.abs(img[20:198] - face[0]).mean() < 6  # JPEG noise only
    assert np.abs(img[:20] - img[20:21]).mean() < 6  # the frame extends the face's top row


def test_lfw_stand_in_is_a_person_folder_tree_of_250px_frames(stand_ins):
    lfw = stand_ins[1]
    people = sorted(p.name for p in lfw.iterdir())
    assert people == ["Person_0001", "Person_0002", "Person_0003"]
    assert sorted(p.name for p in (lfw / "Person_0001").iterdir())[0] == "Person_0001_0001.jpg"
    assert Image.open(lfw / "Person_0001" / "Person_0001_0001.jpg").size == (250, 250)
    faces = load_faces(lfw, 16, split="all", progress=False)
    assert len(faces) == 10 and faces.attr_names == []


def test_lfwcrop_stand_in_is_a_flat_folder_of_64px_ppm_faces_the_loader_reads(stand_ins):
    lfwcrop = stand_ins[2]
    files = sorted((lfwcrop / "faces").iterdir())
    assert files[0].name == "Person_0001_0001.ppm" and len(files) == 10
    assert Image.open(files[0]).size == (64, 64)
    faces = load_faces(lfwcrop, 64, split="all", progress=False)
    assert len(faces) == 10 and faces.channels == 3
    face, _ = render_batch(1, 0, 1, 64)
    assert np.array_equal(faces.images[0].permute(1, 2, 0).numpy(), face[0])  # ppm is lossless


def test_cli_rehearsal_writes_all_three_and_skips_when_present(tmp_path, capsys):
    assert cli_main(["rehearsal", "--out", str(tmp_path), "--n", "10"]) == 0
    assert (tmp_path / "celeba" / "list_eval_partition.txt").is_file() and (tmp_path / "lfw").is_dir()
    assert len(list((tmp_path / "lfwcrop_color" / "faces").glob("*.ppm"))) == 10
    assert cli_main(["rehearsal", "--out", str(tmp_path), "--n", "10", "--if-missing"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert cli_main(["rehearsal", "--out", str(tmp_path / "x"), "--n", "3"]) == 2
    assert "n must be >= 10" in capsys.readouterr().err


def test_run_notebooks_rehearsal_runs_full_with_the_cap_and_the_data_elsewhere(tmp_path, monkeypatch):
    for name in ("FACEGAN_PROFILE", REHEARSE_ENV, "FACEGAN_OUTPUTS", "FACEGAN_CHECKPOINTS", "PYTHONOPTIMIZE"):
        monkeypatch.setenv(name, "")  # restored afterwards: main() sets them for the kernels
    monkeypatch.setattr(paths, "OUTPUTS", tmp_path / "outputs")
    monkeypatch.setattr(paths, "CHECKPOINTS", tmp_path / "ckpts")
    monkeypatch.setattr(paths, "ASSETS", tmp_path / "assets")
    nb = tiny_notebook(tmp_path / "07_full.ipynb",
                       "import helpers as H\nprint(H.setup(profile=profile).profile, data, H.config.rehearsal_seconds(), "
                       "H.paths.OUTPUTS.name, H.paths.CHECKPOINTS.name, __debug__)\n"
                       "H.viz.save_figure(__import__('matplotlib.pyplot').pyplot.figure(), H.paths.output_dir('07_full') / 'f.png')")
    data = tmp_path / "mydata"
    data.mkdir()
    stale = tmp_path / "ckpts" / "rehearsal" / "dcgan" / "last.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an older rehearsal")
    assert run_notebooks.main([str(nb), "--rehearse", "7", "--data", str(data)]) == 0
    executed = tmp_path / "outputs" / "rehearsal" / "07_full" / "07_full.ipynb"
    printed = "".join(t for o in json.loads(executed.read_text())["cells"][-1]["outputs"] for t in o.get("text", [])
                      ).splitlines()
    # __debug__ False: python -O, the notebooks' learning asserts are not a rehearsal's business
    assert printed[-1].split() == ["full", str(data.resolve()), "7.0", "rehearsal", "rehearsal", "False"]
    assert any("from FACEGAN_REHEARSE" in line for line in printed[:-1])  # setup() said what the environment set
    assert (tmp_path / "outputs" / "rehearsal" / "07_full" / "f.png").is_file()
    assert not (tmp_path / "assets").exists()  # a rehearsal never replaces the published figures
    assert not stale.exists()  # nor resumes an older rehearsal
    with pytest.raises(SystemExit):
        run_notebooks.main([str(nb), "--rehearse", "7", "--inplace"])
