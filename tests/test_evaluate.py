"""`make evaluate`: a trained checkpoint judged on a face folder, one JSON out; clear refusals."""
import json

import pytest
import torch

from helpers.models import dcgan
from helpers.tools import evaluate
from tests.fixtures import make_celeba


def test_a_dcgan_checkpoint_is_judged_on_a_folder(tmp_path, capsys):
    data = make_celeba(tmp_path / "faces", n=60)
    from helpers.data.faces import load_faces

    cfg = dcgan.config_for("smoke")
    torch.manual_seed(0)
    trainer, nets = dcgan.build_trainer(cfg, load_faces(data, cfg.img_size, split="train"), "cpu", tmp_path / "ck",
                                        live=False, progress=False)
    trainer.fit(1, steps=2)
    out = tmp_path / "eval.json"
    assert evaluate.main(["--model", "dcgan", "--weights", str(tmp_path / "ck" / "last.pt"), "--data", str(data),
                          "--out", str(out), "--n", "8", "--split", "all", "--device", "cpu"]) == 0
    assert "Inception features" in capsys.readouterr().err  # minutes on a CPU: a bar shows them passing
    result = json.loads(out.read_text())
    assert result["n"] == 8 and result["img_size"] == cfg.img_size and result["fid"] > 0
    assert 0 <= result["face_detect_rate"] <= 1 and 0 <= result["face_detect_rate_real"] <= 1
    assert "nn_ratio" not in result and "copy_ratio" not in result  # split all: no face is held out from training
    train, test = (load_faces(data, cfg.img_size, split=s) for s in ("train", "test"))
    copies = evaluate.nn_ratios(train.sample(2, seed=5), train, test, "test")
    assert copies["nn_ratio"] == pytest.approx(0.0, abs=1e-5) and copies["copy_ratio"] == 0.0
    assert evaluate.nn_ratios(dcgan.samples(nets, cfg, 2), train, test, "test")["nn_ratio"] > 0
    assert evaluate.nn_ratios(train.sample(2, seed=5), train, test, "all") == {}
    valid = load_faces(data, cfg.img_size, split="valid")
    _, _, held = evaluate.folders(str(data), cfg.img_size, "valid+test")  # every face no model trained on
    assert len(held) == len(valid) + len(test) and held.split == "valid+test"
    assert torch.equal(held.images, torch.cat([valid.images, test.images]))
    with pytest.raises(SystemExit, match="holds a 'dcgan' model, not 'began'"):
        evaluate.main(["--model", "began", "--weights", str(tmp_path / "ck" / "last.pt"), "--data", str(data),
                       "--out", str(out)])


def test_an_unknown_published_set_says_which_there_are(tmp_path, capsys):
    assert evaluate.main(["--model", "dcgan", "--weights", "nosuchset", "--out", str(tmp_path / "x.json")]) == 2
    assert "no published set 'nosuchset' for 01_dcgan_face_generation" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="evaluate takes dcgan, fader, smile, began, lapgan"):
        evaluate.read_weights("stylegan", "synthetic")


def test_headless_smile_and_lapgan_runs_are_judged(tmp_path):
    """`make train`'s SMiLE GAN checkpoint and LAPGAN run folder: the curves of issue 36 need them."""
    from helpers.data.faces import load_faces
    from helpers.models import lapgan, smile

    data = make_celeba(tmp_path / "faces", n=60)
    cfg = smile.config_for("smoke")
    trainer, _ = smile.build_gan_trainer(cfg.acgan, load_faces(data, cfg.img_size, split="train"), "cpu",
                                         tmp_path / "smile" / "acgan", live=False, progress=False)
    trainer.fit(1, steps=2)
    out = evaluate.evaluate_smile_run(str(tmp_path / "smile" / "acgan" / "last.pt"), str(data), 8, "all", "cpu")
    assert out["model"] == "smile" and out["img_size"] == cfg.img_size and out["n"] == 8
    assert 0 <= out["class_accuracy"] <= 1 and out["fid"] > 0 and 0 <= out["face_detect_rate"] <= 1
    assert "conversion_accuracy" not in out  # the encoder is the notebook's: a GAN checkpoint has none

    lcfg = lapgan.config_for("smoke")
    root = tmp_path / "lapgan"
    trainers, _, _ = lapgan.train_pyramid(lcfg, load_faces(data, lcfg.img_size, split="train"), "cpu", root,
                                          live=False, progress=False)
    with pytest.raises(SystemExit, match="the pyramid needs every level"):
        (root / lapgan.level_name(lcfg, 1) / "last.pt").rename(root / "moved.pt")
        evaluate.evaluate_lapgan_run(str(root), str(data), 8, "all", "cpu")
    (root / "moved.pt").rename(root / lapgan.level_name(lcfg, 1) / "last.pt")
    out = evaluate.evaluate_lapgan_run(str(root / lapgan.level_name(lcfg, 0) / "last.pt"), str(data), 8, "all", "cpu")
    assert out["model"] == "lapgan" and out["img_size"] == lcfg.img_size and out["n"] == 8 and out["fid"] > 0
    with pytest.raises(SystemExit, match="holds no level checkpoints"):
        evaluate.evaluate_lapgan_run(str(tmp_path), str(data), 8, "all", "cpu")
    with pytest.raises(SystemExit, match="--model smile takes a checkpoint of its acgan or wacgan"):
        evaluate.evaluate_smile_run(str(root / lapgan.level_name(lcfg, 0) / "last.pt"), str(data), 8, "all", "cpu")
