"""LAPGAN (notebook 05): a Laplacian pyramid of GANs, coarse (16 px) to fine (32 or 64 px)."""
from . import ui  # noqa: F401
from .config import PRESETS, LapGANConfig, config_for, level_sizes  # noqa: F401
from .nets import (BaseDiscriminator, BaseGenerator, ConvBaseDiscriminator, ConvBaseGenerator,  # noqa: F401
                   LevelDiscriminator, LevelGenerator, build_level, downsample, laplacian_pyramid, level_name,
                   pyramid_of, reconstruct, resize_to, upsample)
from .sample import d_scores, evaluate, generate, images_per_second, sample_pyramid  # noqa: F401
from .train import (base_z, build_trainer, level_noise, level_seconds, make_optimizer, make_step, parts,  # noqa: F401
                    regularise_gradients, train_pyramid)


def sampler(nets_per_level: list) -> list:
    """Return the generators to sample from, one per level (the averages when there are)."""
    from ...gan import sampler as pick

    return [pick(nets) for nets in nets_per_level]
