"""Two processes (gloo on CPU) against one: every model's smoke configuration trained a few steps
with a global batch split over 2 ranks must keep identical weights on both ranks after every step
and end where one process with the whole batch ends; rank 1 writes nothing; checkpoints move
between world sizes (2 -> 1 and 1 -> 2) and continue at the right step; SIGTERM on one rank stops
both at the same step with a checkpoint.

The noise a step draws is pinned to the global sample (test-only): a one-process run draws the
global batch's latents at once, two processes each draw their own, so without it the runs could
only agree in distribution. Dropout is off for the same reason; bf16 is off (rounding).
"""
import contextlib
import copy
import importlib
import os
import signal
import sys
import warnings

import pytest
import torch
import torch.distributed as dist

from helpers.core import checkpoint as ckpt_io
from helpers.core import distributed, global_batch
from helpers.core import spawn
from helpers.core.spawn import SpawnError, spawn_local
from helpers.data.faces import FaceSet

STEPS = 4
# name: (model package, build_trainer kwargs, config overrides of the smoke preset)
CASES = {
    "dcgan": ("dcgan", {}, {"amp": False, "ema_bn_samples": 256}),
    "fader": ("fader", {}, {"d_dropout": 0.0}),
    "acgan": ("smile", {"part": "acgan"}, {"acgan": {"amp": False, "fm": "l2"}}),  # feature matching: batch means
    "wacgan": ("smile", {"part": "wacgan"}, {"wacgan": {"amp": False, "warmup_critic": 2}}),
    "began": ("began", {}, {"amp": False, "k0": 0.5, "lambda_k": 0.1}),  # k_t off its clip, moving fast
    "lapgan_16": ("lapgan", {"level": 0}, {"amp": False, "d_dropout": 0.0}),
    "lapgan_32": ("lapgan", {"level": 1}, {"amp": False, "d_dropout": 0.0}),
}
# Rank-equality only: the gradient penalty draws its own interpolation weights.
GP_CASE = ("dcgan", {}, {"amp": False, "loss": "wgan-gp", "ema_bn_samples": 256})
NOISE = {"dcgan": ["sample_z"], "smile": ["sample_z"], "began": ["sample_z"], "lapgan": ["base_z", "level_noise"]}


def tiny_faces(n=128, size=32):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    attrs = torch.stack([torch.ones(n), torch.arange(n) % 2, torch.randint(0, 2, (n,), generator=g)], 1).float()
    return FaceSet(images, attrs, ["Smiling", "Male", "Eyeglasses"], "tiny32", "tiny", "train")


class PinnedNoise:
    """Draw k of step s: the global batch's noise from seed (s, k), this process's rows of it."""

    def __init__(self):
        self.step, self.k = 0, 0

    def rows(self, n, draw):
        ws, r = distributed.world_size(), distributed.rank()
        g = torch.Generator().manual_seed(1000 * self.step + self.k)
        self.k += 1
        return draw(n * ws, g)[r * n:(r + 1) * n]

    def wrap(self, name, original):
        if name == "sample_z":
            def fn(n, z_dim, dist="uniform", device="cpu", generator=None, seed=None):
                if generator is not None or seed is not None:  # the fixed sample grid
                    return original(n, z_dim, dist, device, generator, seed)
                return self.rows(n, lambda m, g: original(m, z_dim, dist, generator=g)).to(device)
        elif name == "base_z":
            def fn(n, cfg, device="cpu", seed=None):
                if seed is not None:
                    return original(n, cfg, device, seed)
                return self.rows(n, lambda m, g: torch.rand(m, cfg.z_dim, generator=g) * 2 - 1).to(device)
        else:
            def fn(n, cfg, size, device="cpu", generator=None):
                if generator is not None:
                    return original(n, cfg, size, device, generator)
                return self.rows(n, lambda m, g: original(m, cfg, size, "cpu", g)).to(device)
        return fn


@contextlib.contextmanager
def built(case, ckpt_dir, pin=True):
    """Yield (trainer, checks): the case's trainer with pinned noise; checks collects, after every
    step, whether all ranks hold bit-identical weights."""
    model, kwargs, overrides = case
    package = importlib.import_module(f"helpers.models.{model}")
    train_mod = importlib.import_module(f"helpers.models.{model}.train")
    pinned, saved = PinnedNoise(), {}
    if pin:
        for name in NOISE.get(model, []):
            saved[name] = getattr(train_mod, name)
            setattr(train_mod, name, pinned.wrap(name, saved[name]))
    try:
        torch.manual_seed(0)
        cfg = package.config_for("smoke", **overrides)
        trainer, _ = package.build_trainer(cfg, tiny_faces(), "cpu", ckpt_dir, live=False, progress=False, **kwargs)
        step_fn, checks = trainer.step_fn, []

        def step(batch, state):
            pinned.step, pinned.k = state.step, 0
            logs = step_fn(batch, state)
            checks.append(same_everywhere(trainer))
            return logs

        trainer.step_fn = step
        yield trainer, checks
    finally:
        for name, fn in saved.items():
            setattr(train_mod, name, fn)


def flat_state(trainer) -> dict:
    return {f"{m}.{k}": v.detach().float().clone() for m, mod in trainer.modules.items()
            for k, v in mod.state_dict().items()}


def same_everywhere(trainer) -> bool:
    if distributed.world_size() == 1:
        return True
    flat = torch.cat([v.reshape(-1) for v in flat_state(trainer).values()])
    out = [torch.empty_like(flat) for _ in range(distributed.world_size())]
    dist.all_gather(out, flat)
    return all(torch.equal(out[0], o) for o in out[1:])


def record_writes(root: str, writes: list) -> None:
    """Audit every file or folder this process creates or opens for writing under root."""
    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(
                (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        elif event in ("os.rename", "os.mkdir", "os.remove"):
            path, writing = args[0], True
        else:
            return
        if writing and isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(root):
            writes.append((event, os.fsdecode(path)))

    sys.addaudithook(hook)


def global_batch_statistics() -> dict:
    """Return this rank's SyncBatchNorm and batch_mean / batch_var outputs, gradients (÷ world size,
    as average_gradients divides) and running statistics on its rows of a fixed global batch."""
    ws, r = distributed.world_size(), distributed.rank()
    x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(5)) * 3 + 1
    mine = x[r * 8 // ws:(r + 1) * 8 // ws].clone().requires_grad_(True)
    bn = global_batch.sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))
    y = bn(mine)
    flat = mine.flatten(1)
    mean, var = global_batch.batch_mean(flat), global_batch.batch_var(flat)
    (y.pow(3).mean() + mean.pow(2).sum() + var.pow(2).sum()).backward()  # a local mean, as the losses
    return {"y": y.detach(), "grad": mine.grad / ws, "mean": mean.detach(), "var": var.detach(),
            "running": [t.clone() for t in bn.state_dict().values()]}


def worker(root):
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])  # spawn_local's
    torch.set_num_threads(1)
    writes = []
    if rank == 1:
        record_writes(root, writes)
    distributed.init("cpu")
    out = {"cases": {}, "checks": {}, "statistics": [None] * world}
    dist.all_gather_object(out["statistics"], global_batch_statistics())
    for name, case in {**CASES, "gp": GP_CASE}.items():
        with built(case, os.path.join(root, "ck", name)) as (trainer, checks):
            trainer.fit(10**6, steps=STEPS)
            out["cases"][name], out["checks"][name] = flat_state(trainer), checks
    with built(CASES["dcgan"], os.path.join(root, "two")) as (trainer, _):  # 2 ranks write a mid-epoch checkpoint
        trainer.fit(10**6, steps=3)
    with built(CASES["dcgan"], os.path.join(root, "one")) as (trainer, _):  # 1 process wrote step 2
        st = trainer.fit(10**6, steps=2)
        out["from_one"] = {"step": st.step, "weights": flat_state(trainer)}
    with pytest.raises(ValueError, match="does not split over 2 processes"), built(
            ("dcgan", {}, {"batch_size": 33}), None):
        pass
    distributed.install_stop_signals()
    with built(CASES["dcgan"], os.path.join(root, "signal")) as (trainer, _):
        step_fn = trainer.step_fn

        def step(batch, state):  # the scheduler's SIGTERM reaches rank 1 during step 1
            if rank == 1 and state.step == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return step_fn(batch, state)

        trainer.step_fn = step
        st = trainer.fit(10**6, steps=50)
        stops = [None] * world
        dist.all_gather_object(stops, (st.stopped, st.step))
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    all_writes = [None] * world
    dist.all_gather_object(all_writes, writes)
    if rank == 0:
        out.update(writes=all_writes, stops=stops)
        torch.save(out, os.path.join(root, "results.pt"))
    distributed.shutdown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run the 2-process worker once (after a 1-process run wrote a checkpoint at step 2); return
    (its results, the folder).

    One retry, from scratch in a new folder, only when a signal killed a rank: once in CI (torch
    2.13, gloo on loopback) rank 1 died of SIGABRT, which 45 runs here did not reproduce, and the
    log did not show where. A wrong result, a Python error or a second death still fails; the
    first death's output is kept as a warning (SpawnError quotes its last lines)."""
    for attempt in (1, 2):
        root = tmp_path_factory.mktemp("ddp")
        with built(CASES["dcgan"], root / "one") as (trainer, _):
            trainer.fit(10**6, steps=2)
        try:
            spawn_local(worker, 2, str(root))
            return torch.load(root / "results.pt", weights_only=False), root
        except SpawnError as err:
            if err.signal is None or attempt == 2:
                raise
            warnings.warn(f"the 2-process worker died ({err}); running it once more")


def one_process(case, steps=0) -> dict:
    """Return the weights of a one-process run of `steps` steps (0: the initial weights)."""
    with built(case, None) as (trainer, _):
        if steps:
            trainer.fit(10**6, steps=steps)
        return flat_state(trainer)


def assert_same_run(got: dict, want: dict, start: dict) -> None:
    """Weights equal to float tolerance, judged on what training changed (Adam's first steps move
    every weight by about lr, so a missing sync shows up as a relative error near 1)."""
    assert got.keys() == want.keys()
    moved = torch.cat([(want[k] - start[k]).reshape(-1) for k in want])
    error = torch.cat([(got[k] - want[k]).reshape(-1) for k in want])
    assert moved.norm() > 0
    assert error.norm() <= 1e-3 * moved.norm(), (float(error.norm()), float(moved.norm()))


def test_batch_statistics_and_their_gradients_are_the_global_batch(two_ranks):
    results, _ = two_ranks
    want = global_batch_statistics()  # one process: plain batch norm, x.mean(0), x.var(0)
    got = results["statistics"]
    torch.testing.assert_close(torch.cat([g["y"] for g in got]), want["y"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([g["grad"] for g in got]), want["grad"], rtol=1e-4, atol=1e-5)
    for g in got:
        for key in ("mean", "var"):
            torch.testing.assert_close(g[key], want[key], rtol=1e-5, atol=1e-6)
        for a, b in zip(g["running"], want["running"]):
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES) + ["gp"])
def test_two_ranks_hold_identical_weights_after_every_step(two_ranks, name):
    results, _ = two_ranks
    assert results["checks"][name] == [True] * STEPS


@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_train_what_one_process_trains_at_the_same_global_batch(two_ranks, name):
    results, _ = two_ranks
    start = one_process(CASES[name])
    assert_same_run(results["cases"][name], one_process(CASES[name], STEPS), start)


def test_a_two_rank_checkpoint_continues_in_one_process_at_the_right_step(two_ranks):
    _, root = two_ranks
    ck = ckpt_io.read_checkpoint(root / "two" / "last.pt")
    assert (ck["state"]["step"], ck["state"]["batch"], ck["config"]["world_size"]) == (3, 3, 2)
    assert len(ck["rng"]["ranks"]) == 2
    with built(CASES["dcgan"], root / "two") as (trainer, _):
        assert trainer.load() and trainer.state.step == 3
        st = trainer.fit(10**6, steps=2)
        assert st.step == 5
        got = flat_state(trainer)
    assert_same_run(got, one_process(CASES["dcgan"], 5), one_process(CASES["dcgan"]))


def test_a_one_process_checkpoint_continues_in_two_ranks(two_ranks):
    results, _ = two_ranks
    assert results["from_one"]["step"] == 4
    assert_same_run(results["from_one"]["weights"], one_process(CASES["dcgan"], 4), one_process(CASES["dcgan"]))


def test_rank_1_writes_nothing_and_rank_0_writes_the_checkpoints(two_ranks):
    results, root = two_ranks
    assert results["writes"][1] == []
    assert all((root / "ck" / name / "last.pt").is_file() for name in CASES)


def test_sigterm_on_one_rank_stops_both_at_the_same_step_with_a_checkpoint(two_ranks):
    results, root = two_ranks
    assert results["stops"] == [("signal", 2), ("signal", 2)]
    ck = ckpt_io.read_checkpoint(root / "signal" / "last.pt")
    assert (ck["state"]["step"], ck["state"]["stopped"]) == (2, "signal")


def test_sync_batchnorm_keeps_the_parameters_and_is_plain_batch_norm_in_one_process():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 5), torch.nn.BatchNorm1d(5)))
    plain = copy.deepcopy(net)
    params, keys = list(net.parameters()), list(net.state_dict())
    global_batch.sync_batchnorm(net)
    assert isinstance(net[1], global_batch.SyncBatchNorm) and isinstance(net[3][2], global_batch.SyncBatchNorm)
    assert all(p is q for p, q in zip(params, net.parameters())) and list(net.state_dict()) == keys
    x = torch.randn(8, 3, 8, 8)
    assert torch.equal(net(x), plain(x))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), plain.state_dict().values()))


def dies_on_rank_1(how):
    """A worker whose rank 1 fails (rank 0 waits in a collective for it, as a real run would)."""
    distributed.init("cpu")
    if distributed.rank() == 1:
        print("rank 1 about to fail", flush=True)
        if how == "abort":
            os.abort()  # what an uncaught C++ exception in a library thread ends in
        raise ValueError("a worker's own error")
    dist.barrier()


@pytest.mark.parametrize("how, said", [("abort", ["ended by SIGABRT", "Fatal Python error: Aborted"]),
                                       ("raise", ["exited with code 1", "ValueError: a worker's own error"])])
def test_a_failed_rank_is_named_with_how_it_ended_and_its_last_output(how, said):
    with pytest.raises(SpawnError) as err:
        spawn_local(dies_on_rank_1, 2, how)
    first, *rest = str(err.value).splitlines()
    assert first.startswith("rank 1 of 2 ") and said[0] in first
    assert said[1] in "\n".join(rest) and "rank 1 about to fail" in "\n".join(rest)


def test_the_first_line_of_a_spawn_error_is_the_cpp_exception_when_there_is_one(tmp_path):
    from torch.distributed.elastic.multiprocessing.api import RunProcsResult
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    err, out = tmp_path / "stderr.log", tmp_path / "stdout.log"
    err.write_text("terminate called after throwing an instance of 'gloo::IoException'\n"
                   "  what():  [pair.cc:589] Read error [127.0.0.1]:3977: Connection reset by peer\n"
                   "Fatal Python error: Aborted\n\n"
                   '  File "helpers/core/errors.py", line 3 in step\n')
    out.write_text("step 3\n")
    result = RunProcsResult(failures={1: ProcessFailure(1, 123, -int(signal.SIGABRT), str(tmp_path / "none.json"))},
                            stderrs={1: str(err)}, stdouts={1: str(out)})
    spawn_error = spawn._failure(result, 2)
    assert (spawn_error.rank, spawn_error.signal) == (1, "SIGABRT")
    first = str(spawn_error).splitlines()[0]
    assert first == "rank 1 of 2 ended by SIGABRT: what():  [pair.cc:589] Read error [127.0.0.1]:3977: Connection reset by peer"
    assert str(spawn_error).endswith("step 3")
