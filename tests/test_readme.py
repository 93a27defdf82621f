"""The README's results table is the committed metrics of the published runs, number for number."""
import json

import pytest

from helpers.core import paths
from helpers.tools import readme


def test_the_readme_table_is_what_the_committed_metrics_say():
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.section(text) == readme.table(), "README.md's results table is stale: run make publish"
    for notebook in {row[0] for row in readme.ROWS}:
        assert readme.metrics_path(notebook).is_file(), f"no committed metrics for {notebook}: run make publish"


def test_the_check_fails_on_any_difference(tmp_path):
    (tmp_path / "01_dcgan_face_generation").mkdir()
    metrics = {"fd_ratio": 6.43, "attr_direction_accuracy": 0.981, "profile": "demo", "train_seconds": 480,
               "machine": "a CPU", "fid": 40.25}
    (tmp_path / "01_dcgan_face_generation" / "metrics.json").write_text(json.dumps(metrics))
    table = readme.table(tmp_path)
    assert "| oracle FD / floor | 6.4x | <= 5.0x: **no** | FID 40.2 |" in table
    assert "| attribute directions flip | 0.981 | >= 0.800: yes |" in table
    assert "| 00_data | oracle accuracy (valid) | no committed run |" in table
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme.START}\nold\n{readme.END}\nrest\n")
    assert readme.rewrite(page, tmp_path) and readme.section(page.read_text()) == table
    assert not readme.rewrite(page, tmp_path)  # already current
    metrics["fd_ratio"] = 6.52  # one shown digit of one number
    (tmp_path / "01_dcgan_face_generation" / "metrics.json").write_text(json.dumps(metrics))
    assert readme.section(page.read_text()) != readme.table(tmp_path)
    with pytest.raises(ValueError, match="no results markers"):
        readme.section("a README without the table")


def test_the_real_faces_table_is_what_the_committed_real_runs_say():
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.section(text, readme.REAL_START, readme.REAL_END) == readme.real_table(), \
        "README.md's real-faces table is stale: run make publish-real (or python -m helpers.tools.readme --write)"


def test_real_rows_judge_goals_and_set_the_embedded_value_beside(tmp_path):
    real = tmp_path / "real" / "celeba_dev"
    for folder, m in ((real / "02_fadernet", {"swap_accuracy": {"Smiling": 0.9, "Eyeglasses": 0.6, "mean": 0.75},
                                               "swap_accuracy_mean": 0.75, "train_seconds": 480}),
                      (real / "01_dcgan_face_generation", {"fd_oracle": 10.0}),
                      (real / "04_began_interpolation", {"fd_oracle": 15.0, "face_detect_rate": 0.5,
                                                         "face_detect_rate_real": 0.8}),
                      (tmp_path / "02_fadernet", {"swap_accuracy_mean": 0.9}),
                      (tmp_path / "01_dcgan_face_generation", {"fd_oracle": 10.0}),
                      (tmp_path / "04_began_interpolation", {"fd_oracle": 50.0})):
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(m))
    table = readme.real_table(tmp_path)
    assert "| 02_fadernet | celeba_dev | swap accuracy (mean) | 0.750 | >= 0.850: **no** | 0.900 | 480 s training |" in table
    assert "| swap accuracy, worst attribute | 0.600 | >= 0.700: **no** |" in table
    assert "| oracle FD / DCGAN's | 1.5x | <= 2.0x: yes | 5.0x |" in table  # each against its own data's DCGAN
    assert "| faces found / real faces' | 0.62 | >= 0.95: **no** |" in table
    assert "| 03_smile_converter | celeba_dev | conversion accuracy | no committed run |" in table
    page = tmp_path / "README.md"
    page.write_text(f"{readme.START}\nold\n{readme.END}\n{readme.REAL_START}\nold\n{readme.REAL_END}\n")
    assert readme.rewrite(page, tmp_path)
    assert readme.section(page.read_text(), readme.REAL_START, readme.REAL_END) == table


def test_the_published_sets_table_is_what_the_manifest_says(tmp_path):
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.section(text, readme.PUB_START, readme.PUB_END) == readme.published_table(), \
        "README.md's published-sets table is stale: python -m helpers.tools.readme --write"
    entry = {"notebook": "01_dcgan_face_generation", "set": "synthetic", "data": "synthetic", "img_size": 32,
             "images_seen": 15360, "train_seconds": 480.2, "hardware": "a CPU", "bytes": 4_300_000,
             "numbers": {"fid": 41.96, "face_detect_rate": 0.5, "n": 2000, "data": "synthetic", "split": "test"}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"entries": [entry, {**entry, "set": "celeba", "numbers": {}}]}))
    table = readme.published_table(tmp_path)
    assert ("| 01_dcgan_face_generation | `synthetic` | synthetic, 32 px | 15,360 images, 480 s, a CPU | 4.3 MB "
            "| FID 42.0, faces found 0.50 (2,000 samples, synthetic test) |") in table
    assert "| `celeba` |" in table and "not measured yet" in table and "All files together: 8.6 MB." in table


def test_the_celeba_table_reads_issue_36s_goals_from_the_cards(tmp_path):
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.section(text, readme.CELEBA_START, readme.CELEBA_END) == readme.celeba_table(), \
        "README.md's celeba table is stale: python -m helpers.tools.readme --write"
    entry = {"notebook": "01_dcgan_face_generation", "set": "celeba", "img_size": 64, "images_seen": 300_000,
             "train_seconds": 2400.0, "hardware": "a CPU", "bytes": 1,
             "numbers": {"fid": 70.12, "face_detect_rate": 0.855, "face_detect_rate_real": 0.95, "nn_ratio": 0.97}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"entries": [entry, {**entry, "set": "synthetic"}]}))
    demo = tmp_path / "real" / "celeba_dev" / "01_dcgan_face_generation"
    demo.mkdir(parents=True)
    (demo / "metrics.json").write_text(json.dumps({"fid": 86.8, "face_detect_rate": 0.8, "face_detect_rate_real": 0.8}))
    table = readme.celeba_table(tmp_path, root=tmp_path)
    assert "| 01_dcgan_face_generation | FID | 70.1 | <= 35.0: **no** | 86.8 (celeba_dev) | 64 px, 300,000 images, 40 min, a CPU |" in table
    assert "|  | faces found / real faces' | 0.90 | >= 0.95: **no** | 1.00 (celeba_dev) |  |" in table
    assert "|  | nearest-training-face ratio | 0.97 | >= 0.90: yes |  |  |" in table
    assert "| 02_fadernet |  | not published yet |  |  |  |" in table  # one line for a notebook without a model
    began = {**entry, "notebook": "04_began_interpolation", "img_size": 32, "numbers": {"fid": 60.0}}
    lapgan = {**entry, "notebook": "05_lapgan", "img_size": 32, "numbers": {"fid": 80.0, "fid_direct": 50.0}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"entries": [began, lapgan]}))
    table = readme.celeba_table(tmp_path, root=tmp_path)  # BEGAN's FID against the set's 32 px DCGAN, in 05
    assert "|  | FID / the set's 32 px DCGAN's (05's direct) | 1.20 | <= 1.50: yes |  |  |" in table
    assert "| 05_lapgan | pyramid FID / direct DCGAN's | 1.60 | <= 1.00: **no** |" in table
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"entries": [began]}))
    assert "|  | FID / the set's 32 px DCGAN's (05's direct) | not measured |  |  |  |" in \
        readme.celeba_table(tmp_path, root=tmp_path)  # no LAPGAN set: no yardstick
