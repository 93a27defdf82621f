"""The GPU check (`make gpu-check`): full presets in two short slices, resumed, measured, and one
model's failure recorded without stopping the others."""
import json

import pytest

from helpers.tools import gpu_check
from helpers.data.rehearsal import write_celeba_sized, write_lfw_sized

from .test_train import make_trainer


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_check_data")
    return write_celeba_sized(root / "celeba", n=200), write_lfw_sized(root, n=80, crop=True)


def _run(stand_ins, out, models, *extra):
    celeba, lfw = stand_ins
    return gpu_check.main(["--models", models, "--seconds", "0.3", "--celeba", str(celeba), "--lfw", str(lfw),
                           "--out", str(out), "--device", "cpu", "--epoch-images", "256", *extra])


def test_full_presets_train_resume_and_are_reported(stand_ins, tmp_path):
    assert _run(stand_ins, tmp_path, "lapgan_16,acgan") == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    by = {r["model"]: r for r in report["results"]}
    assert list(by) == ["lapgan_16", "acgan"]
    for r in by.values():
        assert r["ok"] and r["losses_finite"]
        assert r["resumed"] and r["resume_continues"] and r["resumed_at_step"] == r["first_slice"]["steps"] >= 1
        assert r["warm_steps"] >= 1 and r["images_per_second"] > 0 and r["schedule_hours_at_this_speed"] > 0
    assert by["acgan"]["batch_size"] == 64 and "64 px" in by["acgan"]["schedule"]  # the full preset, not the demo's 32 px
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| acgan | 64 |" in table and "| lapgan_16 |" in table
    assert (tmp_path / "samples.png").stat().st_size > 1000


def test_a_failing_model_is_recorded_and_the_others_still_run(stand_ins, tmp_path):
    assert _run(stand_ins, tmp_path, "nosuch,lapgan_16") == 1
    by = {r["model"]: r for r in json.loads((tmp_path / "gpu_check.json").read_text())["results"]}
    assert not by["nosuch"]["ok"] and "unknown model 'nosuch'" in by["nosuch"]["error"]
    assert by["lapgan_16"]["ok"]
    assert "**failed**" in (tmp_path / "gpu_check.md").read_text()


def test_a_run_that_does_not_resume_is_caught(tmp_path):
    builds = iter([tmp_path / "a", tmp_path / "b"])  # the second build looks in another folder: no resume
    job = gpu_check.Job("toy", lambda: make_trainer(next(builds))[0], pass_images=1e4, where="toy")
    r = gpu_check.run_job(job, "cpu", seconds=0.2)
    assert not r["resumed"] and not r["resume_continues"]
    same = gpu_check.Job("toy", lambda: make_trainer(tmp_path / "c")[0], 1e4, "toy")
    r = gpu_check.run_job(same, "cpu", seconds=0.2)
    assert r["resumed"] and r["resume_continues"] and r["warm_steps"] >= 1


def test_a_small_set_gets_full_epochs_of_epoch_images(stand_ins, tmp_path):
    celeba, lfw = stand_ins
    (job,) = gpu_check.jobs("dcgan", celeba, lfw, "cpu", tmp_path, epoch_images=512)
    trainer = job.build()
    assert len(trainer.faces) < 512 and trainer.per_epoch == 512 // 128  # ~160 faces, epochs of 512 images
    assert [j.name for j in gpu_check.jobs("lapgan", celeba, lfw, "cpu", tmp_path)] == ["lapgan_16", "lapgan_32",
                                                                                       "lapgan_64"]


def test_nproc_runs_the_check_in_processes_and_reports_the_whole_job(stand_ins, tmp_path):
    assert _run(stand_ins, tmp_path, "lapgan_16", "--nproc", "2") == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    (r,) = report["results"]
    assert report["nproc"] == 2 and r["ok"] and r["resume_continues"] and r["batch_size"] == 64  # the global batch
    assert "2 processes" in (tmp_path / "gpu_check.md").read_text()


def test_the_report_is_written_after_every_job(stand_ins, tmp_path, monkeypatch):
    """A check killed at its time limit (the device tool's) must leave what it had measured."""
    real, seen = gpu_check.run_job, []

    def run_then_die(job, device, seconds):
        if seen:
            raise KeyboardInterrupt  # what a kill looks like to the loop: nothing after it runs
        seen.append(job.name)
        return real(job, device, seconds)

    monkeypatch.setattr(gpu_check, "run_job", run_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(stand_ins, tmp_path, "lapgan_16,acgan")
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [r["model"] for r in report["results"]] == ["lapgan_16"] and report["results"][0]["ok"]
    assert "| lapgan_16 |" in (tmp_path / "gpu_check.md").read_text()
