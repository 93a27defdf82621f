"""Notebook 00's data tour figures."""
import matplotlib.pyplot as plt
import torch

from helpers.ui import explore


def test_attribute_overview_grows_with_the_number_of_attributes():
    g = torch.Generator().manual_seed(0)
    heights = {}
    for n in (17, 40):  # the synthetic set's names, CelebA's
        attrs = (torch.rand(200, n, generator=g) < 0.3).float()
        fig = explore.plot_attribute_overview(attrs, [f"attr_{j}" for j in range(n)], title="t")
        heights[n] = fig.get_size_inches()[1]
        assert len(fig.axes[1].get_yticklabels()) == n
        plt.close(fig)
    assert heights[17] == 4.5 and heights[40] >= 2 * heights[17]
