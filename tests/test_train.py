"""The generic loop: exact resume, time budgets, NaN stops, refused checkpoints, atomic writes."""
import pickle

import pytest
import torch
import torch.nn as nn

from helpers import checkpoint as ckpt_io
from helpers.data.faces import FaceSet
from helpers.train import Trainer


def tiny_faces(n=48, size=8):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return FaceSet(images, torch.zeros(n, 0), [], "tiny", "tiny", "train")


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

    loader = tiny_faces().loader(8, seed=1, flip=True)
    trainer = Trainer(name, modules={"net": net}, optimizers={"opt": opt}, step_fn=step, loader=loader,
                      config=config or {"lr": 1e-2, "width": 4, "epochs": 3}, device="cpu",
                      ckpt_dir=tmp_path, sample_fn=lambda: net(torch.zeros(2, 3, 8, 8)).tanh(),
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
    make_trainer(tmp_path, config={"lr": 1e-2, "width": 4, "epochs": 1})[0].fit(epochs=1)
    longer, _ = make_trainer(tmp_path, config={"lr": 1e-2, "width": 4, "epochs": 2})
    assert longer.fit(epochs=2).epoch == 2
    wider, _ = make_trainer(tmp_path, config={"lr": 1e-2, "width": 8, "epochs": 2})
    with pytest.raises(ckpt_io.CheckpointMismatch, match="width: checkpoint 4 vs now 8"):
        wider.fit(epochs=3)


def test_load_modules_loads_weights_only_and_refuses_what_does_not_fit(tmp_path):
    trainer, net = make_trainer(tmp_path, config={"lr": 1e-2, "width": 4, "epochs": 1})
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
    from helpers.train import adam

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
    from helpers.train import adam

    net = nn.Linear(2, 2)
    groups = adam([{"params": [net.weight]}, {"params": net.bias, "lr": 1e-3}], 1e-2)  # a list or one tensor
    assert groups.defaults["fused"] is True and groups.param_groups[1]["lr"] == 1e-3
    meta = nn.Linear(2, 2, device="meta")
    assert adam(meta.parameters(), 1e-2).defaults["fused"] is None
