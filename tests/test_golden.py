"""Golden weights: a few seeded training steps of every model give the very weights recorded before.

A refactor of the loop, the steps or the optimiser calls must not change what training computes.
Each case trains a smoke-sized model for STEPS steps on seeded random faces (its checkpoint and the
weight average's batch-norm recalibration included) and hashes every network's state_dict, the
weight average's too. Floating-point results depend on the CPU's kernels (AVX2 / AVX512, native
bf16 or not), so the hashes are recorded per kind of CPU; on a kind with no record the test skips
and says how to record one:

    .venv/bin/python -m tests.test_golden   # (re)writes tests/golden_weights.json for this CPU kind
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

from torch.optim.optimizer import register_optimizer_step_pre_hook

from helpers.core import distributed
from helpers.core.runtime import bf16_native
from helpers.data.faces import FaceSet
from helpers.models import began, dcgan, fader, lapgan, smile

GOLDEN = Path(__file__).with_name("golden_weights.json")
STEPS = 3
THREADS = 2
ATTRS = ["Eyeglasses", "Male", "Smiling"]


def cpu_kind() -> str:
    return f"{torch.backends.cpu.get_cpu_capability()}, bf16 {'native' if bf16_native('cpu') else 'emulated'}"


def random_faces(size: int, n: int = 96) -> FaceSet:
    g = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    attrs = (torch.rand(n, len(ATTRS), generator=g) > 0.5).float()
    return FaceSet(images, attrs, list(ATTRS), f"golden{size}", "golden", "train")


def digest(nets: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(nets):
        for key, t in sorted(nets[name].state_dict().items()):
            h.update(f"{name}.{key}".encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def train(build, tmp: Path, **kw) -> dict:
    torch.manual_seed(0)
    trainer, nets = build(tmp, **kw)
    trainer.fit(epochs=10, steps=STEPS, resume=False)
    return nets if isinstance(nets, dict) else {"E": nets}


def cases(tmp: Path) -> dict:
    """Return {case: state_dict digest} after STEPS steps of each model (smoke sizes), in THREADS
    threads (the kernels split their sums by the thread count, so it is part of the record)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _cases(tmp)
    finally:
        torch.set_num_threads(threads)


def _cases(tmp: Path) -> dict:
    quiet = dict(live=False, progress=False)
    out = {}
    for name, over in (("dcgan", {}), ("dcgan_wgan_gp", dict(loss="wgan-gp", n_critic=2, diffaugment="color,translation"))):
        cfg = dcgan.config_for("smoke", **over)
        out[name] = digest(train(lambda d, **k: dcgan.build_trainer(cfg, random_faces(32), "cpu", d, **k),
                                 tmp / name, **quiet))
    cfg = fader.config_for("smoke")
    out["fader"] = digest(train(lambda d, **k: fader.build_trainer(cfg, random_faces(32), "cpu", d, **k), tmp / "fader",
                                **quiet))
    scfg = smile.config_for("smoke")
    gans = {}
    for part in ("acgan", "wacgan"):
        gans[part] = train(lambda d, **k: smile.build_trainer(scfg, random_faces(32), "cpu", d, part=part, **k),
                           tmp / part, **quiet)
        out[f"smile_{part}"] = digest(gans[part])
    out["smile_encoder"] = digest(train(
        lambda d, **k: smile.build_encoder_trainer(scfg.encoder_after, gans["acgan"]["G_ema"], scfg.acgan,
                                                   random_faces(32), "cpu", d, **k), tmp / "encoder", **quiet))
    cfg = began.config_for("smoke", ema=0.999)  # the smoke preset has no average; the loop's must be checked
    out["began"] = digest(train(lambda d, **k: began.build_trainer(cfg, random_faces(32), "cpu", d, **k), tmp / "began",
                                **quiet))
    cfg = lapgan.config_for("smoke", ema=0.99)
    for level in range(len(cfg.sizes)):
        out[f"lapgan_{level}"] = digest(train(
            lambda d, **k: lapgan.build_trainer(cfg, random_faces(32), "cpu", d, level=level, **k),
            tmp / f"lapgan{level}", **quiet))
    return out


def test_every_model_trains_to_the_recorded_weights(tmp_path):
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if cpu_kind() not in recorded:
        pytest.skip(f"no golden weights for this CPU kind ({cpu_kind()}); record them: python -m tests.test_golden")
    got, want = cases(tmp_path), recorded[cpu_kind()]
    assert sorted(got) == sorted(want)
    changed = [k for k in want if got[k] != want[k]]
    assert not changed, f"training computes other weights than before for {changed}"


def test_every_optimiser_step_follows_an_averaging_of_its_gradients(tmp_path, monkeypatch):
    """Under torchrun a step that forgot distributed.average_gradients(opt) would let the processes'
    weights drift apart; in one process nothing would show it, so each model's steps are watched."""
    averaged, steps = set(), []

    def average(*opts):
        for opt in opts:
            assert any(p.grad is not None for g in opt.param_groups for p in g["params"]), "averaged before backward"
        averaged.update(map(id, opts))

    def before_step(opt, args, kwargs):
        steps.append((type(opt).__name__, id(opt) in averaged))
        averaged.discard(id(opt))

    monkeypatch.setattr(distributed, "average_gradients", average)
    handle = register_optimizer_step_pre_hook(before_step)
    try:
        cases(tmp_path)
    finally:
        handle.remove()
    assert len(steps) > 20 and all(ok for _, ok in steps), [s for s in steps if not s[1]]


def test_the_digest_sees_one_changed_weight():
    net = torch.nn.Linear(3, 2)
    before = digest({"G": net})
    with torch.no_grad():
        net.weight[0, 0] += 1e-7
    assert digest({"G": net}) != before


if __name__ == "__main__":
    import tempfile

    data = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        data[cpu_kind()] = cases(Path(tmp))
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(data[cpu_kind()])} cases for {cpu_kind()} in {GOLDEN}", file=sys.stderr)
