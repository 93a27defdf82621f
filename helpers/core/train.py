"""One training loop for every model: each model supplies its networks, optimisers and a step.

    trainer = Trainer("dcgan", modules={"D": D, "G": G, "G_ema": G_ema}, optimizers={"d": d_opt, "g": g_opt},
                      step_fn=step, faces=train_faces, batch_size=64, config=cfg, device=device,
                      ckpt_dir=paths.checkpoint_dir("dcgan/demo"), sample_fn=lambda m: m["G_ema"](fixed_z))
    state = trainer.fit(epochs=cfg.epochs, max_seconds=cfg.max_seconds)

The clock is images seen: an "epoch" is `epoch_images` images (default: one pass over the faces),
however large the data set, so samples, metrics and checkpoints come at the same pace on 5,000 or
200,000 faces. The loop owns: the data stream (resumable at any batch), device placement, bf16
autocast, train/eval modes (train for the networks an optimiser trains, eval for every other one:
a weight average, a frozen network), the progress bar and live plot, fixed-input sample grids,
atomic checkpoints (each epoch, at a time-budget stop, every `save_every_minutes`, on SIGTERM when
the run installed distributed.install_stop_signals), exact resume, best-metric checkpoints, and a
clean stop on a NaN/inf loss. A step never reads data and never samples; it makes every update
itself (zero_grad, backward, averaging, clip, step, ema_update: see models/<name>/train.py).

Under torchrun the same loop runs in every process (helpers.core.distributed). `batch_size` is the
global batch: each of N processes takes its batch_size / N share of every global batch, and the
learning rate stays the preset's, so one and N processes train the same schedule (same batches in
the same order, same steps per epoch) and a checkpoint moves between world sizes. Rank 0 alone
samples, evaluates, prints and writes; every process takes part in the agreements (training time,
stop signals, logged means) so they all stop, save and resume at the same step.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt_io
from . import distributed
from .config import REHEARSE_ENV, field_defaults, rehearsal_budget, rehearsal_seconds, run_keys
from .modules import eval_mode
from .runtime import autocast, bf16_native


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches done inside the current epoch (non-zero only after a mid-epoch stop)
    step: int = 0  # optimisation steps (batches) done in all
    seconds: float = 0.0  # training time spent in all (excluding evaluation callbacks)
    history: dict = field(default_factory=dict)  # curves logged every log_every steps
    epoch_metrics: list = field(default_factory=list)  # what epoch_end_fn returned, per epoch
    samples: list = field(default_factory=list)  # uint8 (N, C, H, W) fixed-input samples, per epoch
    best: dict = field(default_factory=dict)  # best value seen per keep_best metric
    stopped: str = ""  # 'done' | 'time' | 'steps' | 'signal' | 'nan' | ''


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Return images in [-1, 1] as uint8 on the CPU (compact enough to keep every epoch's samples)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)


_SAID_FP32: set[str] = set()  # models whose fp32 fallback was announced in this process


class Trainer:
    """Runs step_fn over a stream of batches of `faces`; see the module docstring.

    step_fn(batch, state) -> dict of scalar losses (tensors or floats); batch = (x (B, C, H, W) in
    [-1, 1], attrs (B, A)); state.step counts the steps before this one. It runs inside bf16 autocast
    when amp=True (on hardware without native bf16 the loop says so and trains in fp32); it makes
    every update itself (zero_grad, backward, distributed.average_gradients, clip, step, ema_update).
    channels_last: the networks and batches in that memory layout (pays with bf16 on CUDA or AMX).
    config: the model's config dataclass (saved in every checkpoint; its run-only fields may
    change on resume, see helpers.core.config); the data set's key is saved with it (another data
    set's checkpoint is refused); extra_config: more keys that must match.
    sample_fn(modules) -> images (N, C, H, W) in [-1, 1]: at each epoch end, in eval mode, no grad.
    epoch_end_fn(trainer) -> dict of metrics or None, at each epoch end (e.g. validation scores);
    keep_best: {metric: 'min' | 'max'}: also keep best_<metric>.pt for those metrics.
    before_eval() -> None: called (no grad) before each epoch's samples, metrics and checkpoint
    (e.g. recalibrate_batchnorm of a weight average).
    save_every_minutes: also write last.pt after this much training time mid-epoch (a preempted
    run loses minutes, not the epoch); None: at epoch ends and stops only.
    batch_size: the global batch; under torchrun each process takes batch_size / world size.
    sync_bn: under torchrun, batch norm of the trained networks over the global batch (default).
    """

    def __init__(self, name: str, *, modules: dict, optimizers: dict, step_fn: Callable, faces, batch_size: int,
                 config, device, ckpt_dir: str | Path | None = None, extra_config: dict | None = None,
                 epoch_images: int | None = None, flip: bool = False, seed: int = 0, channels_last: bool = False,
                 sample_fn: Callable | None = None, epoch_end_fn: Callable | None = None, before_eval: Callable | None = None,
                 keep_best: dict | None = None, schedulers: dict | None = None, amp: bool = True,
                 log_every: int = 10, live: bool = True, progress: bool = True,
                 keep_every: int = 0, save_every_minutes: float | None = None, sync_bn: bool = True):
        self.name, self.step_fn, self.device = name, step_fn, torch.device(device)
        self.rank, self.world_size, self.is_main = distributed.rank(), distributed.world_size(), distributed.is_main()
        if batch_size % self.world_size:
            raise ValueError(f"batch_size={batch_size} does not split over {self.world_size} processes: "
                             "use a number of processes that divides it")
        if amp and not bf16_native(self.device):  # emulated bf16 trains many times slower than fp32
            if self.is_main and name not in _SAID_FP32:  # once per model: a notebook rebuilds its nets to check them
                print(f"{name}: bf16 autocast off ({self.device.type} without native bf16): fp32 in the default layout")
                _SAID_FP32.add(name)
            amp, channels_last = False, False
        fmt = torch.channels_last if channels_last else torch.preserve_format
        # .to() keeps the Parameter objects, so optimisers built before still hold them.
        self.modules = {k: m.to(self.device, memory_format=fmt) for k, m in modules.items()}
        trained = {id(p) for o in optimizers.values() for g in o.param_groups for p in g["params"]}
        self.trained = {k for k, m in self.modules.items() if any(id(p) in trained for p in m.parameters())}
        distributed.prepare(self.modules, self.trained, sync_bn)
        self.optimizers, self.schedulers = optimizers, schedulers or {}
        self.faces, self.batch_size = faces, batch_size
        self.loader = faces.loader(batch_size // self.world_size, flip=flip, device=self.device, seed=seed,
                                   channels_last=channels_last, rank=self.rank, world_size=self.world_size)
        self.per_epoch = (epoch_images or len(faces)) // batch_size
        if self.per_epoch < 1:
            raise ValueError(f"an epoch of {epoch_images or len(faces)} images holds no batch of {batch_size}: "
                             "raise epoch_images or lower batch_size")
        cfg = asdict(config) if is_dataclass(config) else dict(config)
        # world_size only steers a run: a checkpoint of N processes resumes in M. data_faces (FaceSet.digest)
        # lets the same faces resume on another path or machine, where their cache key differs.
        digest = getattr(faces, "digest", None)
        self.config = {**cfg, "data": getattr(faces, "key", None), "data_faces": digest() if digest else None,
                       **(extra_config or {}), "world_size": self.world_size}
        self.run_keys = sorted({*(run_keys(config) if is_dataclass(config) else ()), "world_size"})
        self.config_defaults = field_defaults(config) if is_dataclass(config) else {}  # fields added later
        self.ckpt_dir = Path(ckpt_dir) if ckpt_dir else None
        self.sample_fn, self.epoch_end_fn, self.before_eval = sample_fn, epoch_end_fn, before_eval
        self.keep_best, self.keep_every, self.save_every = keep_best or {}, keep_every, save_every_minutes
        # a rehearsal trains a few steps: log each, so the curves and the code that reads them exist
        self.amp, self.log_every, self.progress = amp, 1 if rehearsal_seconds() else log_every, progress and self.is_main
        from .live import LivePlot, in_notebook

        self.live = LivePlot(name) if live and self.is_main and in_notebook() else None
        self.state = TrainState()
        self._rng = None  # every process's RNG state at the last checkpoint (several processes)
        self.peak_memory_gib: list = []  # every process's peak CUDA memory at the last log point

    @property
    def global_batch(self) -> int:
        """Images one step consumes across all processes."""
        return self.loader.batch_size * self.loader.world_size

    def set_epoch_images(self, images: int) -> None:
        """Make an epoch `images` images from here on (tools that time a few steps of a long epoch)."""
        self.per_epoch = max(1, images // self.global_batch)

    # ---- checkpoints -------------------------------------------------------------------------
    @property
    def last_path(self) -> Path | None:
        return self.ckpt_dir / "last.pt" if self.ckpt_dir else None

    def payload(self) -> dict:
        """Return everything needed to resume exactly: weights, optimisers, RNG, state, config."""
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        if self._rng is not None:  # several processes: each one's stream, for a resume with as many
            rng["ranks"] = self._rng
        return {"model": self.name, "config": self.config, "run_keys": self.run_keys,
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "rng": rng, "state": asdict(self.state)}

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (atomically) to path, default ckpt_dir/last.pt; rank 0 only."""
        path = Path(path) if path else self.last_path
        return ckpt_io.save_checkpoint(self.payload(), path) if path and self.is_main else None

    def load(self, path: str | Path | None = None) -> bool:
        """Restore from path (default last.pt); False when there is none. Refuses a mismatch.
        Several processes: every one restores what rank 0 read."""
        path = Path(path) if path else self.last_path
        ck = distributed.from_rank0(lambda: ckpt_io.load_checkpoint(
            path, model=self.name, config=self.config, ignore=self.run_keys, networks=self.modules,
            defaults=self.config_defaults)
            if path is not None and path.is_file() else None)
        if ck is None:
            return False
        for k, m in self.modules.items():
            m.load_state_dict(ck["modules"][k])
        for group, items in (("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            for k, o in items.items():
                if k in ck[group]:
                    o.load_state_dict(ck[group][k])
        torch.set_rng_state(ck["rng"]["torch"])
        if ck["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
        distributed.split_rng(self.device, ck["rng"].get("ranks"))
        self.state = TrainState(**ck["state"])
        return True

    # ---- the loop ----------------------------------------------------------------------------
    def fit(self, epochs: int, max_seconds: float | None = None, resume: bool = True,
            steps: int | None = None) -> TrainState:
        """Train until `epochs` epochs are complete, max_seconds of training in all, or `steps` more
        steps; return the state.

        With resume=True a matching last.pt is continued exactly where it stopped (a finished run
        returns at once); a checkpoint of another model or configuration raises CheckpointMismatch.
        """
        if resume and self.load():
            if self.is_main:
                print(f"resumed {self.name} from {self.last_path}: epoch {self.state.epoch}, step {self.state.step}")
        else:
            distributed.split_rng(self.device)
        st = self.state
        capped = rehearsal_budget(epochs, max_seconds, start_epoch=st.epoch, start_seconds=st.seconds)
        if capped != (epochs, max_seconds) and self.is_main:
            print(f"{self.name}: rehearsal ({REHEARSE_ENV}): {capped[0]} epochs and {capped[1]:.0f} s at most, "
                  "a log point every step")
        epochs, max_seconds = capped
        if st.epoch >= epochs or (max_seconds is not None and st.seconds >= max_seconds):
            st.stopped = st.stopped or "done"
            return st
        st.stopped, stop_step = "", None if steps is None else st.step + steps
        bar = tqdm(total=epochs * self.per_epoch, initial=st.step, unit="step", desc=self.name,
                   disable=not self.progress, mininterval=1.0)
        pending: dict[str, list] = {}
        self._set_train_modes()
        start, saved_at = (st.step, st.seconds), st.seconds
        last = time.perf_counter()
        try:
            for batch in self.loader.stream(st.step):
                with autocast(self.device, self.amp):
                    logs = self.step_fn(batch, st)
                st.step, st.batch = st.step + 1, st.batch + 1
                for k, v in logs.items():
                    pending.setdefault(k, []).append(v.detach() if torch.is_tensor(v) else v)
                now = time.perf_counter()  # every process acts on the slowest one's clock
                st.seconds, signalled = distributed.agree(st.seconds + now - last, distributed.stop_requested())
                last = now
                if st.step % self.log_every == 0:
                    if not self._flush(pending, st):
                        break
                    bar.set_postfix(self._postfix(st, start), refresh=False)
                bar.update(1)
                if max_seconds is not None and st.step % 50 == 0 and st.seconds > start[1]:
                    # the time budget usually ends the run first: let the bar's total (and ETA) say so
                    left = (st.step - start[0]) / (st.seconds - start[1]) * (max_seconds - st.seconds)
                    bar.total = min(epochs * self.per_epoch, st.step + max(int(left), 1))
                if st.batch >= self.per_epoch:  # a complete epoch
                    st.epoch, st.batch = st.epoch + 1, 0
                    for s in self.schedulers.values():
                        s.step()
                    self._end_of_epoch()
                    self._set_train_modes()
                    saved_at = st.seconds
                    if st.epoch >= epochs:
                        break
                stop = ("signal" if signalled else "steps" if st.step == stop_step else
                        "time" if max_seconds is not None and st.seconds >= max_seconds else "")
                if stop:
                    st.stopped = stop
                    if st.batch:
                        self._checkpoint()
                    break
                if self.save_every and st.batch and st.seconds - saved_at >= self.save_every * 60:
                    self._checkpoint()  # a preempted run loses minutes, not the epoch
                    saved_at = st.seconds
                if self.live is not None:
                    self.live.maybe_update(st)
                last = time.perf_counter()  # evaluation callbacks do not count as training time
            if not st.stopped:
                st.stopped = "done"
        finally:
            bar.close()
        return self._finish(max_seconds)

    def _finish(self, max_seconds) -> TrainState:
        st = self.state
        if st.stopped == "nan":
            msg = self._nan_message
            if self.load():  # never continue from poisoned weights; the bad step was never saved
                msg += f" Weights restored from the last good checkpoint (epoch {self.state.epoch})."
            self.state.stopped = "nan"
            if self.is_main:
                print(msg)
            return self.state
        if self.live is not None:
            self.live.update(st)
        why = {"time": f"time budget of {max_seconds or 0:.0f}s reached", "signal": "stopped by a signal"}
        if st.stopped in why and self.is_main:
            print(f"{self.name}: {why[st.stopped]} at epoch {st.epoch}, step {st.step}; checkpoint saved, "
                  "run again to continue")
        return st

    def _set_train_modes(self) -> None:
        for k, m in self.modules.items():
            m.train(k in self.trained)

    def _flush(self, pending: dict, st: TrainState) -> bool:
        """Average pending logs into history; return False (and stop) on a NaN/inf loss."""
        means = {k: float(torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in v]).float().mean())
                 for k, v in pending.items() if v}
        means = distributed.mean_over_ranks(means)  # the global batch's losses; a NaN anywhere stops all
        pending.clear()
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            st.stopped = "nan"
            self._nan_message = (f"{self.name}: loss {', '.join(bad)} became {means[bad[0]]} at step "
                                 f"{st.step}; training stopped. Lower the learning rate or try amp=False (fp32).")
            return False
        for k, v in {"step": st.step, "epoch": st.epoch, "seconds": st.seconds, **means}.items():
            st.history.setdefault(k, []).append(v)
        return True

    def _postfix(self, st: TrainState, start: tuple) -> dict:
        """Return the progress bar's latest losses, images/s of the whole job, peak memory per process."""
        out = {k: f"{v[-1]:.3f}" for k, v in st.history.items() if k not in ("step", "epoch", "seconds")}
        out["img/s"] = f"{(st.step - start[0]) * self.global_batch / max(st.seconds - start[1], 1e-9):.0f}"
        self.peak_memory_gib = distributed.peak_memory_gib(self.device)  # every process's, on CUDA
        if self.peak_memory_gib:
            out["GiB"] = "/".join(f"{m:.1f}" for m in self.peak_memory_gib)
        return out

    def _checkpoint(self) -> None:
        """Mid-epoch: what an epoch end would have saved (every process takes part, rank 0 writes)."""
        self._prepare_eval()
        self._rng = distributed.gather_rng(self.device)
        self.save()

    def _prepare_eval(self) -> None:
        if self.before_eval is not None:
            with torch.no_grad():
                self.before_eval()

    def sample(self) -> torch.Tensor | None:
        """Return sample_fn's images as uint8 (N, C, H, W), every network in eval mode meanwhile
        (each gets its own mode back after); None without a sample_fn."""
        if self.sample_fn is None:
            return None
        with torch.no_grad(), eval_mode(*self.modules.values()):
            return to_uint8(self.sample_fn(self.modules))

    def _end_of_epoch(self) -> None:
        st = self.state
        self._prepare_eval()
        images = self.sample() if self.is_main else None
        if images is not None:
            st.samples.append(images)
        metrics = self.epoch_end_fn(self) if self.epoch_end_fn and self.is_main else None
        if metrics:
            st.epoch_metrics.append({"epoch": st.epoch, **metrics})
        self._rng = distributed.gather_rng(self.device)
        self.save()
        if self.ckpt_dir and self.keep_every and st.epoch % self.keep_every == 0:
            self.save(self.ckpt_dir / f"epoch_{st.epoch:04d}.pt")
        for metric, mode in self.keep_best.items():
            value = (metrics or {}).get(metric)
            if value is None:
                continue
            best = st.best.get(metric)
            if best is None or (value < best if mode == "min" else value > best):
                st.best[metric] = value
                if self.ckpt_dir:
                    self.save(self.ckpt_dir / f"best_{metric}.pt")
