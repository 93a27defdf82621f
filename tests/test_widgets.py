"""Each slider's render function changes its picture when the slider moves; the widgets build."""
import numpy as np
import torch

from helpers import widgets

from .test_dcgan_train import ToyG, ToyOracle


class TwoAttrOracle(ToyOracle):
    attr_names = ["Bright", "Other"]

    def predict(self, x):
        bright = super().predict(x)
        return torch.cat([bright, torch.zeros_like(bright)], 1)


def test_walk_changes_with_position_and_method():
    G, z_a, z_b = ToyG(), torch.full((4,), -0.9), torch.full((4,), 0.9)
    start, end = widgets.render_walk(G, z_a, z_b, 0.0), widgets.render_walk(G, z_a, z_b, 1.0)
    assert start.dtype == np.uint8 and not np.array_equal(start, end)
    assert np.array_equal(widgets.render_walk(G, z_a, z_b, 0.0, "lerp"), start)  # endpoints agree
    z_0, z_1 = torch.tensor([0.1, 1.0, 0, 0]), torch.tensor([0.5, -1.0, 0, 0])  # slerp's midpoint is longer
    assert not np.array_equal(widgets.render_walk(G, z_0, z_1, 0.5, "lerp"), widgets.render_walk(G, z_0, z_1, 0.5, "slerp"))


def test_edit_moves_the_face_and_the_readout():
    G, oracle = ToyG(), TwoAttrOracle()
    z, d = torch.full((4,), -0.5), {"Bright": torch.tensor([1.0, 0, 0, 0])}
    img0, read0 = widgets.render_edit(G, oracle, z, d, {"Bright": 0.0})
    img1, read1 = widgets.render_edit(G, oracle, z, d, {"Bright": 2.0})
    assert not np.array_equal(img0, img1)
    assert read0["Bright"] == 0.0 and read1["Bright"] == 1.0
    table, probs = widgets.render_edit_table(G, oracle, z, d, ["Bright"], values=(-1, 0, 1, 2))
    assert probs.shape == (1, 4) and probs[0, 0] == 0 and probs[0, -1] == 1


def test_epoch_viewer_shows_each_epoch():
    samples = [torch.full((4, 3, 8, 8), v, dtype=torch.uint8) for v in (0, 128, 255)]
    assert not np.array_equal(widgets.render_epoch(samples, 1), widgets.render_epoch(samples, 3))
    box = widgets.epoch_viewer(samples)
    slider, image = box.children
    before = image.value
    slider.value = 1
    assert image.value != before  # the observer redrew the picture


def test_widget_shells_redraw_on_change():
    G, oracle = ToyG(), TwoAttrOracle()
    pool = torch.rand(5, 4) * 2 - 1
    walk = widgets.latent_walk(G, pool)
    controls, image = walk.children
    before = image.value
    controls.children[2].value = 0.0  # the position slider
    assert image.value != before
    d = {"Bright": torch.tensor([1.0, 0, 0, 0]), "_counts": {}}
    box = widgets.attribute_sliders(G, oracle, pool, d)
    controls, image, readout = box.children
    before, text = image.value, readout.value
    controls.children[1].value = 4.0 if float(pool[0, 0]) < 0 else -4.0  # the Bright slider
    assert image.value != before and readout.value != text
