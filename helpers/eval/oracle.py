"""The evaluation oracle: a small attribute classifier trained on the data set in use.

Every notebook scores its GAN with it: Fréchet distance in its 128-d feature space
(helpers.eval.metrics.fd_oracle) and attribute read-outs (attribute_accuracy, flip_rate, preservation).
Without labels (A == 0, e.g. 100 LFW faces) it learns RotNet (which of 4 rotations was applied)
so that its features still separate real from fake faces.

Face-set duck type: `fs.images` uint8 (N, C, H, W), `fs.attrs` float (N, A) in {0, 1},
`fs.attr_names` list of A names, `fs.key` a str unique per (source, size, crop).
"""
from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core import paths
from ..core.atomic import atomic_write
from ..core.modules import infer
from ..data.transforms import scale, to_unit

ROTATION_TASK = "rotation"
CACHE_VERSION = 1
_EVAL_BATCH = 512


class AttributeOracle(nn.Module):
    """Attribute classifier: images (N, C, H, W) in [-1, 1], any size, -> logits (N, A).

    Four stride-2 conv blocks (32-64-128-256, BN + ReLU) at `in_size` px, global average pool,
    a `feat_dim` feature layer (what Fréchet distance uses) and a linear head. With no attributes
    it carries a 4-way rotation head instead (self-supervised fallback) and forward gives (N, 0).
    """

    def __init__(self, attr_names, channels: int = 3, in_size: int = 32, feat_dim: int = 128):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if in_size < 16:
            raise ValueError(f"in_size must be >= 16 (4 stride-2 convs), got {in_size}")
        self.attr_names = list(attr_names)
        self.channels, self.in_size, self.feat_dim = channels, in_size, feat_dim
        widths = (channels, 32, 64, 128, 256)
        blocks = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.trunk = nn.Sequential(*blocks)
        self.feature = nn.Linear(widths[-1], feat_dim)
        self.head = nn.Linear(feat_dim, len(self.attr_names)) if self.attr_names else None
        self.rot_head = None if self.attr_names else nn.Linear(feat_dim, 4)

    @property
    def config(self) -> dict:
        """Return the constructor arguments (what the checkpoint stores to rebuild the net)."""
        return {"attr_names": list(self.attr_names), "channels": self.channels,
                "in_size": self.in_size, "feat_dim": self.feat_dim}

    @property
    def task(self) -> str:
        return "attributes" if self.attr_names else ROTATION_TASK

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Return x as float32 (N, self.channels, in_size, in_size) in [-1, 1].

        x: (N, C, H, W) float in [-1, 1] or uint8 in [0, 255]; C = 1 or 3 (grayscale is repeated
        to RGB, RGB averaged to gray); any H, W (antialiased bilinear resize).
        """
        if x.dim() != 4:
            raise ValueError(f"oracle input must be (N, C, H, W), got shape {tuple(x.shape)}; "
                             "add a batch dimension with x[None]")
        x = scale(to_unit(x)) if x.dtype == torch.uint8 else x.float()
        c = x.shape[1]
        if c != self.channels:
            if c == 1:
                x = x.expand(-1, self.channels, -1, -1)
            elif self.channels == 1 and c == 3:
                x = x.mean(1, keepdim=True)
            else:
                raise ValueError(f"oracle expects 1 or {self.channels} channels, got {c}")
        if x.shape[-2:] != (self.in_size, self.in_size):
            x = F.interpolate(x, size=(self.in_size, self.in_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the (N, feat_dim) features with autograd (training path; no batching)."""
        h = self.trunk(self.prepare(x))
        return self.feature(h.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return attribute logits (N, A); (N, 0) for a rotation-only oracle."""
        f = self.embed(x)
        if self.head is None:
            return f.new_zeros(f.shape[0], 0)
        return self.head(F.relu(f))

    def rotation_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, 4) logits for rotation by 0/90/180/270 degrees (label-free oracles only)."""
        if self.rot_head is None:
            raise RuntimeError("this oracle was trained on attributes and has no rotation head")
        return self.rot_head(F.relu(self.embed(x)))

    def features(self, x: torch.Tensor, batch_size: int = _EVAL_BATCH) -> torch.Tensor:
        """Return float32 features (N, feat_dim) on CPU for images (N, C, H, W) in [-1, 1]."""
        return self._infer(self.embed, x, batch_size)

    def predict(self, x: torch.Tensor, batch_size: int = _EVAL_BATCH) -> torch.Tensor:
        """Return attribute probabilities (N, A) in [0, 1], float32 on CPU."""
        return self._infer(lambda b: torch.sigmoid(self(b)), x, batch_size)

    def _infer(self, fn, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        if len(x) == 0:
            raise ValueError("the oracle got 0 images")
        # fp32 on purpose (no autocast here): metrics must not move with autocast precision.
        return infer(fn, x, modules=(self,), batch_size=batch_size)


# --------------------------------------------------------------------------- training
def _resized_uint8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Return uint8 images resized once to size x size, so epochs do not pay for interpolation."""
    if images.shape[-2:] == (size, size):
        return images
    out = []
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _check_face_set(fs, role: str) -> None:
    for attr in ("images", "attrs", "attr_names", "key"):
        if not hasattr(fs, attr):
            raise TypeError(f"{role} has no .{attr}: pass a face set (images, attrs, attr_names, key)")
    if fs.images.dtype != torch.uint8 or fs.images.dim() != 4:
        raise ValueError(f"{role}.images must be uint8 (N, C, H, W), got {fs.images.dtype} {tuple(fs.images.shape)}")
    if fs.attrs.shape[0] != fs.images.shape[0] or fs.attrs.shape[1:] != (len(fs.attr_names),):
        raise ValueError(f"{role}.attrs has shape {tuple(fs.attrs.shape)}; expected "
                         f"({fs.images.shape[0]}, {len(fs.attr_names)}) to match images and attr_names")


def _rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return all 4 rotations of x stacked (4N, C, S, S) and their labels (4N,) in 0..3."""
    rots = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(len(x))
    return rots, labels


def _evaluate(model: AttributeOracle, images: torch.Tensor, attrs: torch.Tensor) -> dict[str, float]:
    """Return held-out accuracy per attribute, or {'rotation': acc} for a label-free oracle."""
    if model.attr_names:
        logits = infer(model, images, batch_size=_EVAL_BATCH)
        correct = ((logits > 0) == (attrs > 0.5)).float().mean(0)
        return {n: float(c) for n, c in zip(model.attr_names, correct)}

    def rotation_read(x):  # (n, 4): the rotation read for each of x's 4 rotations
        return model.rotation_logits(_rotations(x)[0]).argmax(1).view(4, -1).T

    pred = infer(rotation_read, images, modules=(model,), batch_size=_EVAL_BATCH // 4)
    return {ROTATION_TASK: float((pred == torch.arange(4)).float().mean())}


def train_oracle(train_fs, valid_fs, *, device, seconds: float = 60, max_epochs: int = 30,
                 batch_size: int = 128, seed: int = 0, progress: bool = True, lr: float = 2e-3,
                 in_size: int = 32, feat_dim: int = 128, amp: bool = True) -> tuple[AttributeOracle, dict]:
    """Return (oracle in eval mode on `device`, report) after training on train_fs for at most
    `seconds` (or max_epochs), through the project's one training loop (helpers.core.train).

    Attributes: BCE-with-logits; no attributes: RotNet (4-way rotation). Adam with a cosine decay
    over the budget, random horizontal flips, bf16 autocast (loss in fp32). The global RNG is left
    untouched (forked), so a cache hit or miss does not change later results.
    report = {'accuracy': {name: acc}, 'mean_accuracy', 'train_seconds', 'n_train', 'n_valid',
    'epochs', 'steps', 'task'}; accuracies are on valid_fs (on train_fs when valid_fs is None).
    """
    from ..core.config import rehearsal_seconds
    from ..core.train import Trainer
    from ..data.faces import FaceSet

    _check_face_set(train_fs, "train_fs")
    if valid_fs is None:
        warnings.warn("train_oracle: no valid_fs, the reported accuracy is on the training set")
        valid_fs = train_fs
    _check_face_set(valid_fs, "valid_fs")
    if list(valid_fs.attr_names) != list(train_fs.attr_names):
        raise ValueError("train_fs and valid_fs have different attr_names: split one face set")
    n = len(train_fs.images)
    if n < 2:
        raise ValueError(f"train_fs has {n} image(s); the oracle needs at least 2 (batch norm)")
    cap = rehearsal_seconds()  # `make rehearse`: the oracle too trains only briefly
    seconds = min(seconds, cap) if cap is not None else seconds
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttributeOracle(train_fs.attr_names, channels=train_fs.images.shape[1],
                                in_size=in_size, feat_dim=feat_dim)
        rotation = model.task == ROTATION_TASK
        # RotNet turns each image into 4 samples; keep the step size (and memory) the same.
        per_step = min(max(1, batch_size // 4) if rotation else batch_size, n)
        total_steps = (n // per_step) * max_epochs
        opt = torch.optim.Adam(model.parameters(), lr=lr)

        def step(batch, state):
            x, y = _rotations(batch[0]) if rotation else batch
            frac = min(1.0, max(state.seconds / seconds if seconds > 0 else 1.0, state.step / total_steps))
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
            logits = (model.rotation_logits(x) if rotation else model(x)).float()
            loss = F.cross_entropy(logits, y.to(x.device)) if rotation else F.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"loss": loss.detach()}

        # Resized once, so epochs do not pay for interpolation.
        faces = FaceSet(_resized_uint8(train_fs.images, in_size), train_fs.attrs.float(), list(train_fs.attr_names),
                        str(train_fs.key), "oracle", "train")
        trainer = Trainer(f"oracle ({model.task})", modules={"oracle": model}, optimizers={"adam": opt}, step_fn=step,
                          faces=faces, batch_size=per_step, flip=True, seed=seed, config={"task": model.task},
                          device=device, amp=amp, live=False, progress=progress)
        state = trainer.fit(max_epochs, max_seconds=seconds)
    train_seconds = time.perf_counter() - t0
    accuracy = _evaluate(model, _resized_uint8(valid_fs.images, in_size), valid_fs.attrs.float())
    model.eval()
    report = {"accuracy": accuracy, "mean_accuracy": sum(accuracy.values()) / len(accuracy),
              "train_seconds": train_seconds, "budget_seconds": seconds, "n_train": n, "n_valid": len(valid_fs.images),
              "epochs": state.epoch + (state.batch > 0), "steps": state.step, "task": model.task}
    return model, report


# --------------------------------------------------------------------------- cache
SHORTER = 0.5  # a cached oracle given less than this fraction of the asked seconds is retrained


def oracle_cache_path(fs) -> Path:
    """Return checkpoints_gan/oracle/<fs.key>.pt (key made file-name safe)."""
    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", str(fs.key)).strip("._") or "default"
    return paths.checkpoint_dir("oracle") / f"{name}.pt"


def _save(model: AttributeOracle, report: dict, key: str, target: Path) -> None:
    payload = {"version": CACHE_VERSION, "key": key, "config": model.config, "report": report,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    # Atomic: a crash or a second kernel never sees half a file.
    atomic_write(target, lambda fh: torch.save(payload, fh))


def _load(target: Path, expected: dict, device) -> tuple[AttributeOracle, dict] | None:
    """Return (oracle, report) from the cache, or None (with a warning) when it does not fit."""
    try:
        payload = torch.load(target, map_location="cpu", weights_only=True)
        config = payload["config"]
    except Exception as err:  # truncated / foreign file: retraining is the fix
        warnings.warn(f"oracle cache {target} is unreadable ({err}); retraining")
        return None
    return _from_payload(payload, expected, device, f"oracle cache {target}")


def _from_payload(payload: dict, expected: dict, device, what: str) -> tuple[AttributeOracle, dict] | None:
    config = payload["config"]
    changed = [k for k, v in expected.items() if config.get(k) != v]
    if changed:
        detail = ", ".join(f"{k}: cached {config.get(k)!r} vs now {expected[k]!r}" for k in changed)
        warnings.warn(f"{what} does not match this data set ({detail}); retraining")
        return None
    model = AttributeOracle(**config)
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload["report"]


def load_or_train_oracle(train_fs, valid_fs, *, device, seconds: float = 60, retrain: bool = False,
                         shipped: dict | None = None, **kw) -> tuple[AttributeOracle, dict]:
    """Return (oracle in eval mode on `device`, report), loaded from checkpoints_gan/oracle/<fs.key>.pt
    when it exists and fits train_fs, else trained with train_oracle(**kw) and cached.

    A cached oracle whose attr_names or channels (or in_size / feat_dim given in kw) differ is
    retrained with a warning; `retrain=True` forces it. So is one given less than half of `seconds`
    to train (a smoke run's judge never judges a demo run); one given more serves a shorter budget.
    The other training options do not invalidate the cache: delete the file or pass retrain=True
    after changing them.
    shipped: the oracle a published weight set carries (its cache payload, with `faces`, its training
    faces' digest, and `labelled`, the digests of faces it labelled): used, cache or not, when it was
    trained on these faces or labelled them, so a set is judged by the judge it was judged with.
    """
    _check_face_set(train_fs, "train_fs")
    target = oracle_cache_path(train_fs)
    expected = {"attr_names": list(train_fs.attr_names), "channels": int(train_fs.images.shape[1])}
    expected.update({k: kw[k] for k in ("in_size", "feat_dim") if k in kw})
    # matched by the faces' digest: the cache key names this checkout's path and file times
    if shipped is not None and not retrain and train_fs.digest() in (shipped.get("faces"), *shipped.get("labelled", ())):
        loaded = _from_payload(shipped, expected, device, "the published set's oracle")
        if loaded is not None:
            return loaded
    if target.exists() and not retrain:
        loaded = _load(target, expected, device)
        # a judge given a fraction of this budget (a smoke run's) must not judge a longer run
        if loaded is not None and loaded[1].get("budget_seconds", seconds) < SHORTER * seconds:
            warnings.warn(f"oracle cache {target} was given {loaded[1]['budget_seconds']:.0f} s of training, this "
                          f"run asks for {seconds:.0f} s: retraining")
            loaded = None
        if loaded is not None:
            return loaded
    model, report = train_oracle(train_fs, valid_fs, device=device, seconds=seconds, **kw)
    _save(model, report, str(train_fs.key), target)
    return model, report
