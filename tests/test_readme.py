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
