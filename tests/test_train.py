"""The one loop: exact resume, time budgets, NaN stops, refused checkpoints, atomic writes, the
images-seen clock, the weight average and modes it owns, run-only config fields."""
import pickle
import shutil
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from helpers.core import checkpoint as ckpt_io
from helpers.core.average import ema_update, make_average, recalibrate_batchnorm
from helpers.core.config import run_field
from helpers.core.modules import adam, eval_mode
from helpers.core.train import Trainer
from helpers.data.faces import FaceSet


@dataclass
class ToyConfig:
    lr: float = 1e-2  # defines the model
    width: int = 4  # defines the model
    epochs: int = run_field(3)  # only steers the run


def tiny_faces(n=48, size=8, key="tiny"):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return FaceSet(images, torch.zeros(n, 0), [], key, "tiny", "train")


def make_trainer(tmp_path, name="toy", config=None, fail_at=None, amp=True, **kw):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def step(batch, state):
        x, _ = batch
        noisy = x + 0.1 * torch.randn_like(x)  # uses the global RNG, so resume must restore it
        loss = (net(noisy).float() - x).pow(2).mean()
        if fail_at is not None and state.step + 1 >= fail_at:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    kw.setdefault("faces", tiny_faces())
    trainer = Trainer(name, modules={"net": net}, optimizers={"opt": opt}, step_fn=step, batch_size=8, seed=1,
                      flip=True, config=config or ToyConfig(), device="cpu", ckpt_dir=tmp_path,
                      sample_fn=lambda m: m["net"](torch.zeros(2, 3, 8, 8)).tanh(),
                      log_every=2, live=False, progress=False, amp=amp, **kw)
    return trainer, net


def weights(net):
    return [p.detach().clone() for p in net.state_dict().values()]


def test_loss_falls_and_history_is_logged(tmp_path):
    trainer, _ = make_trainer(tmp_path)
    st = trainer.fit(epochs=3)
    assert st.stopped == "done" and st.epoch == 3 and st.step == 18
    assert st.history["loss"][-1] < st.history["loss"][0]
    assert len(st.samples) == 3 and st.samples[0].dtype == torch.uint8
    assert (tmp_path / "last.pt").is_file()


def test_resume_at_epoch_boundary_reaches_the_same_state(tmp_path):
    straight, net_a = make_trainer(tmp_path / "a")
    straight.fit(epochs=3)
    first, _ = make_trainer(tmp_path / "b")
    first.fit(epochs=1)
    resumed, net_b = make_trainer(tmp_path / "b")  # a fresh process would start exactly like this
    torch.manual_seed(123)  # and with another RNG state, which the checkpoint must override
    st = resumed.fit(epochs=3)
    assert st.step == 18
    assert all(torch.equal(p, q) for p, q in zip(weights(net_a), weights(net_b)))


def test_time_budget_stops_mid_epoch_and_resumes_exactly(tmp_path):
    straight, net_a = make_trainer(tmp_path / "a")
    straight.fit(epochs=2)
    calls = 0
    while True:
        trainer, net_b = make_trainer(tmp_path / "b")
        trainer.load()
        budget = trainer.state.seconds + 1e-9  # stop after one step each call
        st = trainer.fit(epochs=2, max_seconds=budget)
        calls += 1
        if st.epoch >= 2:
            break
        assert st.stopped == "time" and calls < 40
    assert calls > 2  # it really stopped mid-epoch several times
    assert all(torch.equal(p, q) for p, q in zip(weights(net_a), weights(net_b)))


def test_before_eval_runs_before_samples_metrics_and_every_checkpoint(tmp_path):
    events = []
    trainer, _ = make_trainer(tmp_path, before_eval=lambda: events.append(("before", torch.is_grad_enabled())),
                              epoch_end_fn=lambda t: events.append(("metrics", None)))
    trainer.fit(epochs=2)
    assert events == [("before", False), ("metrics", None)] * 2
    events.clear()
    trainer, _ = make_trainer(tmp_path / "t", before_eval=lambda: events.append(("before", None)))
    st = trainer.fit(epochs=2, max_seconds=1e-9)  # stops after one step, mid-epoch
    assert st.stopped == "time" and events == [("before", None)]


def test_finished_run_is_not_trained_again(tmp_path):
    make_trainer(tmp_path)[0].fit(epochs=2)
    again, _ = make_trainer(tmp_path)
    st = again.fit(epochs=2)
    assert st.step == 12 and st.stopped == "done"


def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    trainer, net = make_trainer(tmp_path, fail_at=9)  # epoch 1 (6 steps) completes, then NaN
    st = trainer.fit(epochs=3)
    assert st.stopped == "nan" and st.epoch == 1
    assert "became nan" in capsys.readouterr().out
    assert all(torch.isfinite(p).all() for p in net.parameters())  # restored, not poisoned
    saved = ckpt_io.load_checkpoint(tmp_path / "last.pt")
    assert saved["state"]["epoch"] == 1


def test_checkpoint_of_another_model_is_refused(tmp_path):
    make_trainer(tmp_path, name="fadernet")[0].fit(epochs=1)
    other, _ = make_trainer(tmp_path, name="dcgan")
    with pytest.raises(ckpt_io.CheckpointMismatch, match="'fadernet' model, not 'dcgan'"):
        other.fit(epochs=1)


def test_checkpoint_of_another_configuration_is_refused_but_runtime_keys_may_change(tmp_path):
    make_trainer(tmp_path, config=ToyConfig(epochs=1))[0].fit(epochs=1)
    longer, _ = make_trainer(tmp_path, config=ToyConfig(epochs=2))  # a run-only field
    assert longer.fit(epochs=2).epoch == 2
    wider, _ = make_trainer(tmp_path, config=ToyConfig(width=8, epochs=2))
    with pytest.raises(ckpt_io.CheckpointMismatch, match="width: checkpoint 4 vs now 8"):
        wider.fit(epochs=3)
    other_data, _ = make_trainer(tmp_path, config=ToyConfig(epochs=2), faces=tiny_faces(n=40, key="other"))
    with pytest.raises(ckpt_io.CheckpointMismatch, match="data: checkpoint 'tiny' vs now 'other'"):
        other_data.fit(epochs=3)


def test_the_same_faces_resume_under_another_key_as_on_another_machine(tmp_path):
    # the cache key names the folder's path and its files' times; the faces' digest does not
    first, _ = make_trainer(tmp_path, config=ToyConfig(epochs=1))
    first.fit(epochs=1)
    moved, _ = make_trainer(tmp_path, config=ToyConfig(epochs=2), faces=tiny_faces(key="elsewhere"))
    assert moved.config["data"] != first.config["data"] and moved.config["data_faces"] == first.config["data_faces"]
    assert moved.fit(epochs=2).epoch == 2
    # a checkpoint from before the digest is judged by its key alone, as it was
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    ck["config"].pop("data_faces")
    ck["config"]["data"] = "tiny"
    torch.save(ck, tmp_path / "last.pt")
    assert make_trainer(tmp_path, config=ToyConfig(epochs=3))[0].fit(epochs=3).epoch == 3
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    ck["config"].pop("data_faces")
    torch.save(ck, tmp_path / "last.pt")
    with pytest.raises(ckpt_io.CheckpointMismatch, match="data: checkpoint 'tiny' vs now 'elsewhere'"):
        make_trainer(tmp_path, config=ToyConfig(epochs=4), faces=tiny_faces(key="elsewhere"))[0].fit(epochs=4)


@dataclass
class ToyConfigLater(ToyConfig):
    """ToyConfig after a release added a field (its default is how the old code behaved)."""

    balance: bool = False


def test_a_field_added_later_resumes_an_old_checkpoint_at_its_default_only(tmp_path):
    make_trainer(tmp_path, config=ToyConfig(epochs=1))[0].fit(epochs=1)
    later, _ = make_trainer(tmp_path, config=ToyConfigLater(epochs=2))
    assert later.fit(epochs=2).epoch == 2  # the old checkpoint lacks 'balance': False is what it did
    other = tmp_path / "other"
    make_trainer(other, config=ToyConfig(epochs=1))[0].fit(epochs=1)
    changed, _ = make_trainer(other, config=ToyConfigLater(epochs=2, balance=True))
    with pytest.raises(ckpt_io.CheckpointMismatch, match="balance: checkpoint None vs now True"):
        changed.fit(epochs=2)


def test_load_modules_loads_weights_only_and_refuses_what_does_not_fit(tmp_path):
    trainer, net = make_trainer(tmp_path, config=ToyConfig(epochs=1))
    trainer.fit(epochs=1)
    _, fresh = make_trainer(tmp_path / "other")
    fresh[0].weight.data.zero_()
    ck = ckpt_io.load_modules(trainer.last_path, {"net": fresh}, model="toy")
    assert ck["state"]["epoch"] == 1 and torch.equal(fresh[0].weight, net[0].weight)
    with pytest.raises(ckpt_io.CheckpointMismatch, match="no weights for \\['G'\\]"):
        ckpt_io.load_modules(trainer.last_path, {"net": fresh, "G": nn.Linear(1, 1)}, model="toy")
    with pytest.raises(ckpt_io.CheckpointMismatch, match="'toy' model, not 'began'"):
        ckpt_io.load_modules(trainer.last_path, {"net": fresh}, model="began")
    with pytest.raises(ckpt_io.CheckpointMismatch, match="width: checkpoint 4 vs now 8"):
        ckpt_io.load_modules(trainer.last_path, {"net": fresh}, model="toy", config={"lr": 1e-2, "width": 8})


def test_keep_best_and_periodic_checkpoints(tmp_path):
    scores = iter([3.0, 1.0, 2.0])
    trainer, _ = make_trainer(tmp_path, epoch_end_fn=lambda t: {"err": next(scores)},
                              keep_best={"err": "min"}, keep_every=2)
    st = trainer.fit(epochs=3)
    assert st.best == {"err": 1.0}
    assert ckpt_io.load_checkpoint(tmp_path / "best_err.pt")["state"]["epoch"] == 2
    assert (tmp_path / "epoch_0002.pt").is_file() and not (tmp_path / "epoch_0001.pt").exists()
    assert [m["err"] for m in st.epoch_metrics] == [3.0, 1.0, 2.0]


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = ckpt_io.save_checkpoint({"model": "x", "config": {}, "n": 1}, tmp_path / "last.pt")

    def crash(obj, fh):
        fh.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt_io.save_checkpoint({"model": "x", "config": {}, "n": 2}, path)
    monkeypatch.undo()
    assert ckpt_io.load_checkpoint(path)["n"] == 1


def test_non_checkpoints_are_refused_with_a_message(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(print))  # arbitrary code objects never load (weights_only)
    with pytest.raises(ckpt_io.CheckpointMismatch, match="not a readable"):
        ckpt_io.load_checkpoint(evil)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ckpt_io.CheckpointMismatch, match="not a Face GAN Lab checkpoint"):
        ckpt_io.load_checkpoint(tmp_path / "plain.pt")


def test_adam_is_fused_on_cpu_and_takes_the_default_adams_steps():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    fused = adam(a.parameters(), 1e-2, (0.5, 0.999))
    plain = torch.optim.Adam(b.parameters(), lr=1e-2, betas=(0.5, 0.999))
    assert fused.defaults["fused"] is True and plain.defaults["fused"] is None
    start = [p.detach().clone() for p in a.parameters()]
    x = torch.randn(16, 5)
    for _ in range(5):
        for net, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for p, q, p0 in zip(a.parameters(), b.parameters(), start):
        assert not torch.equal(p, torch.zeros_like(p))
        assert not torch.equal(p, p0)  # the steps moved it
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_adam_takes_parameter_groups_and_falls_back_where_no_fused_kernel_exists():
    net = nn.Linear(2, 2)
    groups = adam([{"params": [net.weight]}, {"params": net.bias, "lr": 1e-3}], 1e-2)  # a list or one tensor
    assert groups.defaults["fused"] is True and groups.param_groups[1]["lr"] == 1e-3
    meta = nn.Linear(2, 2, device="meta")
    assert adam(meta.parameters(), 1e-2).defaults["fused"] is None


def test_the_clock_is_images_seen_whatever_the_data_size(tmp_path):
    # 48 faces, batch 8: epochs of 20 images are 2 steps; of 100 images, 12 steps over two passes
    short, _ = make_trainer(tmp_path / "a", epoch_images=20)
    st = short.fit(epochs=3)
    assert (st.epoch, st.step, len(st.samples)) == (3, 6, 3)
    long, _ = make_trainer(tmp_path / "b", epoch_images=100)
    assert long.fit(epochs=1).step == 12
    with pytest.raises(ValueError, match="no batch of 8"):
        make_trainer(tmp_path / "c", epoch_images=4)


def test_the_stream_covers_each_pass_once_and_replays_any_position():
    n = 24
    imgs = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 2, 2).contiguous()
    loader = FaceSet(imgs, torch.zeros(n, 0), [], "t", "t", "train").loader(8, seed=3)
    ids = lambda x: torch.round((x[:, 0, 0, 0] + 1) * 127.5).long()  # noqa: E731
    stream = loader.stream()
    seen = [ids(next(stream)[0]) for _ in range(6)]  # two passes of 3 batches
    assert sorted(torch.cat(seen[:3]).tolist()) == list(range(n)) == sorted(torch.cat(seen[3:]).tolist())
    assert not torch.equal(torch.cat(seen[:3]), torch.cat(seen[3:]))  # each pass in its own order
    assert torch.equal(ids(next(loader.stream(4))[0]), seen[4])  # batch 4 replays exactly


def test_networks_no_optimiser_trains_stay_in_eval_mode_and_before_eval_recalibrates_the_average(tmp_path):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    G_ema = make_average(G)
    opt = adam(G.parameters(), 1e-2)
    calls, modes = [], []

    def step(batch, state):
        modes.append((G.training, G_ema.training))
        loss = G(batch[0]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_update(G_ema, G, 0.5, step=state.step + 1)
        return {"g_loss": loss.detach()}

    inputs = lambda n, g: torch.randn(n, 3, 8, 8, generator=g)  # noqa: E731
    trainer = Trainer("avg", modules={"G": G, "G_ema": G_ema}, optimizers={"g": opt}, step_fn=step, faces=tiny_faces(),
                      batch_size=8, config=ToyConfig(), device="cpu", ckpt_dir=tmp_path, live=False, progress=False,
                      before_eval=lambda: recalibrate_batchnorm(G_ema, inputs, n=16),
                      sample_fn=lambda m: calls.append((m["G"].training, m["G_ema"].training)) or m["G_ema"](
                          torch.zeros(1, 3, 8, 8)))
    assert trainer.trained == {"G"}
    trainer.fit(epochs=1)
    assert set(modes) == {(True, False)}  # G trains, its average stays in eval mode
    assert calls == [(False, False)] and not G_ema.training and G.training  # samples in eval; modes restored
    bn, live = G_ema[1], G[1]
    assert not torch.allclose(bn.running_mean, live.running_mean)  # its own statistics, not the copied ones
    assert "G_ema" in ckpt_io.load_checkpoint(tmp_path / "last.pt")["modules"]


def test_eval_mode_gives_each_module_its_own_mode_back():
    a, b = nn.BatchNorm1d(2).train(), nn.BatchNorm1d(2).eval()
    with eval_mode(a, b):
        assert not a.training and not b.training
    assert a.training and not b.training


def test_a_time_stop_at_an_epoch_end_does_not_save_twice(tmp_path, monkeypatch):
    saves = []
    trainer, _ = make_trainer(tmp_path)
    real_save = trainer.save
    monkeypatch.setattr(trainer, "save", lambda path=None: saves.append(path) or real_save(path))
    st = trainer.fit(epochs=3, steps=6)  # exactly one epoch
    assert st.stopped == "steps" and st.epoch == 1 and st.batch == 0 and saves == [None]


def test_timed_checkpoints_mid_epoch_change_nothing_and_resume_exactly(tmp_path, monkeypatch):
    straight, net_a = make_trainer(tmp_path / "a")
    straight.fit(epochs=2)
    timed, net_b = make_trainer(tmp_path / "b", save_every_minutes=1e-9)  # due after every step
    copies, real_save = {}, timed.save

    def save(path=None):  # keep a copy of every mid-epoch last.pt, as a SIGKILL would find it
        out = real_save(path)
        if path is None and timed.state.batch:
            copies[timed.state.step] = shutil.copy(out, tmp_path / f"step_{timed.state.step}.pt")
        return out

    monkeypatch.setattr(timed, "save", save)
    assert timed.fit(epochs=2).stopped == "done"
    assert sorted(copies) == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]  # every step but the epoch ends
    assert all(torch.equal(p, q) for p, q in zip(weights(net_a), weights(net_b)))
    (tmp_path / "c").mkdir()
    shutil.copy(copies[8], tmp_path / "c" / "last.pt")  # killed after step 8: epoch 1, batch 2
    resumed, net_c = make_trainer(tmp_path / "c")
    torch.manual_seed(123)
    st = resumed.fit(epochs=2)
    assert st.step == 12 and all(torch.equal(p, q) for p, q in zip(weights(net_a), weights(net_c)))


@pytest.mark.parametrize("native", [True, False])
def test_bf16_autocast_runs_only_where_the_hardware_has_bf16(tmp_path, monkeypatch, native):
    """On a CPU that emulates bf16 the step ran 14-20x slower than fp32 (session 12): a preset's
    amp=True must fall back to fp32 in the default layout there, and keep bf16 where it is native."""
    import helpers.core.train as train_mod

    monkeypatch.setattr(train_mod, "bf16_native", lambda device: native)
    seen = []
    trainer, net = make_trainer(tmp_path, amp=True, channels_last=True)
    step = trainer.step_fn
    trainer.step_fn = lambda batch, st: seen.append((torch.is_autocast_enabled('cpu'), batch[0].is_contiguous(
        memory_format=torch.channels_last) and not batch[0].is_contiguous())) or step(batch, st)
    trainer.fit(1, steps=2)
    assert trainer.amp is native and seen == [(native, native)] * 2
    assert net[0].weight.is_contiguous() is not native  # channels_last weights only with bf16


def test_bf16_native_reads_the_device():
    from helpers.core.runtime import bf16_native

    assert bf16_native("meta") is False
    assert bf16_native("cpu") is bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
