"""The headless entry (`python -m helpers.tools.train`, `make train`): it runs without Jupyter, says
where things go, survives SIGKILL mid-epoch by its timed checkpoints, saves on SIGTERM, and runs
under torchrun with 2 processes."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.core import checkpoint as ckpt_io
from helpers.tools import train as entry

# Every run imports the entry with Jupyter's packages made unimportable: a GPU box has none of them.
NO_JUPYTER = ("import sys\nfor m in ('IPython', 'ipywidgets', 'ipykernel', 'jupyter_client', 'nbformat'):\n"
              "    sys.modules[m] = None\nfrom helpers.tools.train import main\nraise SystemExit(main(sys.argv[1:]))")
SLOW_EPOCH = ["--set", "epoch_images=6400", "--threads", "1", "--seconds", "300"]  # 200 steps an epoch


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Return (environment, data folder): 160 small random face images and private data/checkpoint/output
    folders."""
    root = tmp_path_factory.mktemp("entry")
    rng = np.random.default_rng(0)
    (root / "faces").mkdir()
    for i in range(160):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "faces" / f"{i:04d}.png")
    env = {**os.environ, "FACEGAN_DATA": str(root / "data"), "FACEGAN_CHECKPOINTS": str(root / "ck"),
           "FACEGAN_OUTPUTS": str(root / "out"), "FACEGAN_PROFILE": "smoke", "PYTHONUNBUFFERED": "1"}
    return env, root


def start(env, *args, model="dcgan"):
    return subprocess.Popen([sys.executable, "-c", NO_JUPYTER, "--model", model, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1])


def last_checkpoint(root: Path, model="dcgan"):
    found = list((root / "ck" / model).glob("*/last.pt"))
    return ckpt_io.read_checkpoint(found[0]) if found else None


def wait_for(predicate, proc, timeout=90.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate():
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out: {proc.stdout.read()}")


def test_help_lists_models_profiles_and_the_options_that_matter(capsys):
    with pytest.raises(SystemExit) as exit_:
        entry.main(["--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    for word in ("dcgan", "fader", "smile", "began", "lapgan", "acgan, wacgan", "lapgan_16, lapgan_32, lapgan_64",
                 "smoke", "demo", "full", "--data", "--save-minutes", "--local-bn", "--seconds", "--steps", "--set", "torchrun"):
        assert word in text, word


def test_killed_mid_epoch_it_resumes_from_the_last_timed_checkpoint_and_sigterm_saves_first(folder):
    env, root = folder
    shutil.rmtree(root / "ck", ignore_errors=True)
    # 1. Timed checkpoints every 0.25 s of training; SIGKILL (nothing can be saved) once a few were written.
    proc = start(env, "--data", str(root / "faces"), "--save-minutes", "0.004", *SLOW_EPOCH)
    wait_for(lambda: (last_checkpoint(root) or {"state": {"step": 0}})["state"]["step"] >= 10, proc)
    proc.kill()
    out = proc.communicate()[0]
    assert "checkpoints: " in out and "samples, training curves, metrics: " in out
    saved = last_checkpoint(root)["state"]
    assert saved["epoch"] == 0 and 10 <= saved["batch"] == saved["step"] < 200  # mid-epoch
    # 2. The next run continues from that checkpoint, at that step.
    proc = start(env, "--data", str(root / "faces"), "--steps", "3", *SLOW_EPOCH)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert f"epoch 0, step {saved['step']}" in out and "resumed dcgan from" in out
    assert f"step {saved['step'] + 3}," in out and last_checkpoint(root)["state"]["step"] == saved["step"] + 3
    # 3. SIGTERM: no timed checkpoint is due, yet the run writes last.pt where it stopped and exits 0.
    proc = start(env, "--data", str(root / "faces"), "--save-minutes", "100", *SLOW_EPOCH)
    wait_for(lambda: "resumed dcgan" in (proc.stdout.readline() or ""), proc)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    stopped = last_checkpoint(root)["state"]
    assert stopped["stopped"] == "signal" and saved["step"] + 3 < stopped["step"] < 200
    assert f"stopped by a signal at epoch 0, step {stopped['step']}" in out
    outputs = list((root / "out" / "train" / "dcgan").glob("*/metrics.json"))
    assert outputs and (outputs[0].parent / "samples.png").is_file()


def test_torchrun_with_two_processes_trains_and_writes_once(folder):
    env, root = folder
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "helpers.tools.train",
                           "--model", "began", "--data", str(root / "faces"), "--steps", "3", "--threads", "1"],
                          env=env, text=True, capture_output=True, timeout=180, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("global batch 16 = 8 per process x 2") == 1  # rank 0 alone prints
    ck = last_checkpoint(root, "began")
    assert ck["state"]["step"] == 3 and ck["config"]["world_size"] == 2 and len(ck["rng"]["ranks"]) == 2


def test_without_seconds_each_trainer_gets_the_notebooks_budget():
    """LAPGAN's levels share the pyramid's max_seconds as in notebook 05; other trainers keep their own."""
    from helpers.models import lapgan, smile

    cfg = lapgan.config_for("demo")
    shares = [entry.default_seconds(lapgan, cfg, kw, {"max_seconds": cfg.max_seconds})
              for kw in lapgan.parts(cfg).values()]
    assert shares == [lapgan.level_seconds(cfg, i) for i in range(len(cfg.sizes))] and sum(shares) == cfg.max_seconds
    sc = smile.config_for("demo")
    assert entry.default_seconds(smile, sc, {"part": "wacgan"}, {"max_seconds": sc.wacgan.max_seconds}) == sc.wacgan.max_seconds
