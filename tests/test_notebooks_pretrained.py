"""Every notebook opened on the published `synthetic` set (play first): it runs top to bottom, shows the
set's card, and trains nothing (no checkpoint is written). The smoke profile sizes the judges; the
networks are the set's (its profile's), loaded after their sha256 was checked."""
import json
import os
from pathlib import Path

import pytest

from helpers.core import paths, published

NOTEBOOKS = sorted(p for p in paths.NOTEBOOKS.glob("0[1-9]_*.ipynb"))
# SMiLE opens on data without its Smiling label: it converts faces the set's DCGAN draws (published.faces_to_edit);
# Fader on its own data's faces (the browser suite opens it on the set too)
DATA = {"03_smile_converter": "lfw100"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_from_the_published_synthetic_set(nb, tmp_path, monkeypatch):
    import papermill

    entry = published.find(nb.stem, "synthetic")  # the set is committed: a missing entry fails here
    ckpts = tmp_path / "checkpoints"
    monkeypatch.setenv("FACEGAN_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("FACEGAN_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv(published.PRETRAINED_ENV, raising=False)
    out = tmp_path / nb.name
    papermill.execute_notebook(str(nb), str(out), cwd=str(paths.NOTEBOOKS), kernel_name="python3", progress_bar=False,
                               parameters={"profile": os.environ.get("FACEGAN_PROFILE", "smoke"), "pretrained": "synthetic",
                                           "data": DATA.get(nb.stem, "synthetic")})
    executed = json.loads(out.read_text())
    shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in executed["cells"]
                    for o in c.get("outputs", []))
    assert f"published set `synthetic`" in shown and f"{entry['images_seen']:,} images seen" in shown
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert (nb.stem in DATA) == ("editing faces the 'synthetic' set's DCGAN draws" in printed)
    trained = [p for p in ckpts.rglob("*.pt") if "oracle" not in p.parts] if ckpts.exists() else []
    assert not trained, f"{nb.name} on a published set wrote checkpoints (it trained): {trained}"
    oracle = list((ckpts / "oracle").glob("*.pt")) if (ckpts / "oracle").exists() else []
    assert not oracle, f"{nb.name} trained its oracle instead of using the set's: {oracle}"
