"""The judges a notebook scores its model with, in one object: the attribute oracle trained on the
data in use, and the field's yardsticks that were not (FID / KID on Inception-v3 features, dlib's
face detector, dlib's face-identity embedding: helpers.eval.fid and helpers.eval.judges). Each
notebook calls `generated` for its samples, `reference` for what real faces score, and (editing
models) `identity` for its edits; docs/metrics.md gives the protocol."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .metrics import fd_oracle, fd_reference


@dataclass
class Judges:
    """oracle: an AttributeOracle (features, predict, attr_names); report: its training report.

    n_field: how many samples FID / KID and the face detector score, n_identity how many edits the
    identity judge compares (they are the slow ones on a CPU: the profile's EvalConfig); device:
    where Inception runs.
    """

    oracle: object
    report: dict = field(default_factory=dict)
    n_field: int = 2000
    n_identity: int = 300
    device: str = "cpu"

    def generated(self, fake: torch.Tensor, test, n: int | None = None) -> dict:
        """Return the scores of generated faces against the test faces:
        {'fd_oracle', 'fid', 'kid', 'kid_std', 'kid_se', 'face_detect_rate'}.

        fake: (N, C, H, W) in [-1, 1]; test: the held-out FaceSet (its first-drawn n faces judge
        the oracle FD, its cached Inception features FID / KID). FID / KID and the detector see
        the first n_field samples.
        """
        from . import fid, judges

        n = n or len(fake)
        real = test.sample(n, seed=2)
        k = min(self.n_field, len(fake), len(test))
        scores = fid.fid_kid(fake[:k], test, n_real=k, device=self.device)
        return {"fd_oracle": fd_oracle(self.oracle, fake[:n], real),
                **{key: scores[key] for key in ("fid", "kid", "kid_std", "kid_se")},
                "face_detect_rate": judges.face_detection_rate(fake[:k])}

    def reference(self, train, test, n: int, blur: int = 0) -> dict:
        """Return what real faces score, the yardsticks the numbers are read against: the oracle FD
        between two real sets (the floor) and of noise; FID / KID between training and test faces;
        the detector's rate on test faces."""
        from . import fid, judges

        k = min(self.n_field, len(train), len(test))
        real = fid.fid_kid(train.sample(k, seed=1), test, n_real=k, device=self.device)
        return {**fd_reference(self.oracle, train, test, n=n, blur=blur), "fid_real": real["fid"],
                "kid_real": real["kid"], "kid_real_se": real["kid_se"],
                "face_detect_rate_real": judges.face_detection_rate(test.sample(k, seed=2))}

    def identity(self, before: torch.Tensor, after: torch.Tensor, pairs_from=None) -> dict:
        """Return {'identity_kept', 'identity_kept_real_pairs'}: the fraction of edits (row i of
        `after` is the edit of row i of `before`) that the face embedding calls the same person, and
        the same judge on two photos of one person drawn from the FaceSet `pairs_from` (None when it
        is not given or has no identities): how often the judge keeps a real person. before / after:
        images, or their embeddings (judges.embed, (N, 128)) when one set is compared more than once."""
        from . import judges

        k = min(self.n_identity, len(before))
        real_pairs = None
        if pairs_from is not None and getattr(pairs_from, "identity", None) is not None:
            a, b = same_person_pairs(pairs_from, k)
            real_pairs = judges.identity_kept(a, b) if len(a) else None
        return {"identity_kept": judges.identity_kept(before[:k], after[:k]), "identity_kept_real_pairs": real_pairs}


def summary(scores: dict, reference: dict) -> str:
    """Return one line: FID, KID (with its standard error) and the detector's rate, each beside
    what real faces score."""
    return (f"FID {scores['fid']:.1f} (real vs real {reference['fid_real']:.1f}) | KID {scores['kid']:.4f} "
            f"+- {scores['kid_se']:.4f} (real vs real {reference['kid_real']:.4f}) | faces found "
            f"{scores['face_detect_rate']:.2f} (real {reference['face_detect_rate_real']:.2f})")


def same_person_pairs(faces, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return up to n pairs (a, b) of different photos of one person from a FaceSet with identities:
    uint8 (P, C, H, W) each."""
    g = torch.Generator().manual_seed(seed)
    by_person: dict[int, list[int]] = {}
    for i, pid in enumerate(faces.identity.tolist()):
        by_person.setdefault(pid, []).append(i)
    pairs = [(idx[0], idx[1]) for idx in by_person.values() if len(idx) >= 2]
    pairs = [pairs[i] for i in torch.randperm(len(pairs), generator=g)[:n].tolist()]
    a = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    return faces.images[a], faces.images[b]


def load_judges(train, valid, device, eval_cfg, weights=None) -> Judges:
    """Return the Judges for a data set: the oracle trained on train (cached per data set; a published
    set's `weights` bring theirs), the field's judges sized by eval_cfg (helpers.eval.presets.EvalConfig)."""
    from .oracle import load_or_train_oracle

    oracle, report = load_or_train_oracle(train, valid, device=device, seconds=eval_cfg.oracle_seconds,
                                          shipped=weights.oracle() if weights is not None else None)
    return Judges(oracle, report, n_field=eval_cfg.fid_samples, n_identity=eval_cfg.identity_samples,
                  device=str(device))
