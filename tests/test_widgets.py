"""Each slider's render function changes its picture when the slider moves; the widget shells redraw."""
import numpy as np
import torch

from helpers.models.dcgan import ui
from helpers.ui import widgets

from .test_dcgan_train import ToyG, ToyOracle


class TwoAttrOracle(ToyOracle):
    attr_names = ["Bright", "Other"]

    def predict(self, x):
        bright = super().predict(x)
        return torch.cat([bright, torch.zeros_like(bright)], 1)


def test_walk_changes_with_position_and_method():
    G, z_a, z_b = ToyG(), torch.full((4,), -0.9), torch.full((4,), 0.9)
    start, end = ui.render_walk(G, z_a, z_b, 0.0), ui.render_walk(G, z_a, z_b, 1.0)
    assert start.dtype == np.uint8 and not np.array_equal(start, end)
    assert np.array_equal(ui.render_walk(G, z_a, z_b, 0.0, "lerp"), start)  # endpoints agree
    z_0, z_1 = torch.tensor([0.1, 1.0, 0, 0]), torch.tensor([0.5, -1.0, 0, 0])  # slerp's midpoint is longer
    assert not np.array_equal(ui.render_walk(G, z_0, z_1, 0.5, "lerp"), ui.render_walk(G, z_0, z_1, 0.5, "slerp"))


def test_edit_moves_the_face_and_the_readout():
    G, oracle = ToyG(), TwoAttrOracle()
    z, d = torch.full((4,), -0.5), {"Bright": torch.tensor([1.0, 0, 0, 0])}
    img0, read0 = ui.render_edit(G, oracle, z, d, {"Bright": 0.0})
    img1, read1 = ui.render_edit(G, oracle, z, d, {"Bright": 2.0})
    assert not np.array_equal(img0, img1)
    assert read0["Bright"] == 0.0 and read1["Bright"] == 1.0
    table, probs = ui.render_edit_table(G, oracle, z, d, ["Bright"], values=(-1, 0, 1, 2))
    assert probs.shape == (1, 4) and probs[0, 0] == 0 and probs[0, -1] == 1


def test_epoch_viewer_shows_each_epoch():
    samples = [torch.full((4, 3, 8, 8), v, dtype=torch.uint8) for v in (0, 128, 255)]
    assert not np.array_equal(widgets.render_epoch(samples, 1), widgets.render_epoch(samples, 3))
    box = widgets.epoch_viewer(samples)
    before = box.image.value
    box.controls["epoch"].value = 1
    assert box.image.value != before  # the observer redrew the picture
    assert "no epoch" in widgets.epoch_viewer([]).value


def test_widget_shells_redraw_on_change():
    G, oracle = ToyG(), TwoAttrOracle()
    pool = torch.rand(5, 4) * 2 - 1
    walk = ui.latent_walk(G, pool)
    before = walk.image.value
    walk.controls["t"].value = 0.0  # the position slider
    assert walk.image.value != before
    d = {"Bright": torch.tensor([1.0, 0, 0, 0]), "_counts": {}}
    box = ui.attribute_sliders(G, oracle, pool, d)
    before, text = box.image.value, box.readout.value
    box.controls["Bright"].value = 4.0 if float(pool[0, 0]) < 0 else -4.0  # the Bright slider
    assert box.image.value != before and box.readout.value != text
    box.buttons["reset"].click()  # back to the unedited face
    assert box.controls["Bright"].value == 0.0 and box.image.value == before


def test_a_render_error_is_shown_in_the_readout_not_raised():
    import ipywidgets as W

    def render(v, _changed):
        if v["x"] > 1:
            raise ValueError("too far: pick 0 or 1")
        return np.zeros((2, 2, 3), np.uint8) + v["x"], "ok"

    box = widgets.picture_view({"x": W.IntSlider(value=0, max=3)}, render)
    box.controls["x"].value = 2
    assert "too far" in box.readout.value
