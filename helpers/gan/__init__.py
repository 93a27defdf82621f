"""What several GANs share: losses, the DCGAN building blocks, weight init, DiffAugment, latents,
sampling, inversion, and the weight average the training loop keeps.

Model packages (helpers.models.*) take these from here, never from each other.
"""
from ..core.average import ema_update, make_average, recalibrate_batchnorm  # noqa: F401
from .augment import diff_augment  # noqa: F401
from .blocks import Projection, doubling, down_stack, norm2d, num_stages, up_stack  # noqa: F401
from .init import INITS, weights_init_normal, weights_init_xavier  # noqa: F401
from .latent import (FromMap, attribute_directions, direction_accuracy, generate, interpolate, invert, lerp,  # noqa: F401
                     residual_edit, sample_z, sampler, slerp)
from .losses import (LOSSES, d_loss, fake_loss, g_loss, gradient_penalty, hinge_d_loss,  # noqa: F401
                     real_loss, wgan_d_loss, wgan_g_loss)
