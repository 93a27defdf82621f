"""make bench-quality: skipped cleanly without real faces; the pytorch/examples copy trains; the table
names both models with every score."""
import pytest
import torch

from helpers.data.faces import FaceSet
from helpers.tools import bench_quality as B


def test_without_real_faces_it_says_skipped_and_exits_0(tmp_path, capsys):
    assert B.main(["--data", str(tmp_path / "no_such_folder")]) == 0
    assert "skipped: no real faces" in capsys.readouterr().out


def test_the_reference_dcgan_trains_and_draws_32px_faces():
    images = torch.randint(0, 256, (130, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    faces = FaceSet(images, torch.zeros(130, 0), [], "tiny", "test", "train")
    start = {k: v.clone() for k, v in B.build_reference(seed=0)[0].named_parameters()}  # where training starts
    G, run = B.train_reference(faces, seconds=1.0, batch_size=64, seed=0)
    assert run["steps"] >= 2 and run["batch_size"] == 64  # two batches per pass: it went round at least once
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 3, 32, 32) and -1 <= x.min() and x.max() <= 1 and x.std() > 0
    assert not G.training and all(torch.equal(start[k], v) is False for k, v in G.named_parameters()
                                  if k.endswith("weight") and v.dim() == 4)  # every conv layer learnt


def test_the_table_names_both_models_and_every_score():
    report = {"seconds_each": 480, "data": "/x/celeba_dev", "n": 500, "machine": "cpu", "face_detect_rate_real": 0.9,
              "fid_real": 41.0, "kid_real": 0.0, "kid_real_se": 0.0003}
    for name, fid in (("ours", 40.0), ("reference", 80.0)):
        report.update({f"steps_{name}": 1234, f"fid_{name}": fid, f"kid_{name}": 0.03, f"kid_se_{name}": 0.002,
                       f"face_detect_rate_{name}": 0.8, f"fd_oracle_{name}": 12.5})
    report["fid_ratio"] = 0.5
    text = B.table(report)
    assert "| ours (notebook 01 demo) | 1,234 | 40.0 |" in text and "| pytorch/examples DCGAN | 1,234 | 80.0 |" in text
    assert "480 s of training each on celeba_dev" in text and "(real 0.90)" in text and "0.0300 (± 0.0020)" in text
    assert "FID ours / reference 0.50" in text


def test_markdown_tables_have_one_cell_per_column_and_the_ddp_bench_names_every_setup():
    from helpers.eval.report import markdown_table
    from helpers.tools import bench_ddp

    assert markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n| --- | --- |\n| 1 | x |"
    with pytest.raises(ValueError, match="2 cells"):
        markdown_table(["a", "b"], [[1]])
    report = {"img_s": {"1x1": 60.0, "2x1": 80.0}, "speedup_vs_1x1": {"1x1": 1.0, "2x1": 1.33}, "machine": "cpu",
              "torch": "2", "global_batch": 64, "steps": 3, "efficiency_2_ranks": 0.67, "ranks_vs_threads": 0.8}
    text = bench_ddp.table(report)
    assert "| 1 process x 1 thread | 60.0 | 1.00x |" in text and "| 2 processes x 1 thread" in text and "67%" in text
