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
    assert "nn_ratio" not in result  # split all: no face is held out from training
    train, test = (load_faces(data, cfg.img_size, split=s) for s in ("train", "test"))
    assert evaluate.nn_ratio(train.sample(2, seed=5), train, test, "test") == pytest.approx(0.0, abs=1e-5)  # copies
    assert evaluate.nn_ratio(dcgan.samples(nets, cfg, 2), train, test, "test") > 0
    with pytest.raises(SystemExit, match="holds a 'dcgan' model, not 'began'"):
        evaluate.main(["--model", "began", "--weights", str(tmp_path / "ck" / "last.pt"), "--data", str(data),
                       "--out", str(out)])


def test_an_unknown_published_set_says_which_there_are(tmp_path, capsys):
    assert evaluate.main(["--model", "dcgan", "--weights", "nosuchset", "--out", str(tmp_path / "x.json")]) == 2
    assert "no published set 'nosuchset' for 01_dcgan_face_generation" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="evaluate takes dcgan, fader, smile, began, lapgan"):
        evaluate.read_weights("stylegan", "synthetic")
    with pytest.raises(SystemExit, match="takes a published set's name"):
        evaluate.read_weights("smile", str(tmp_path / "last.pt"))
