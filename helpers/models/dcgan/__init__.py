"""DCGAN (notebook 01): the Udacity face-generation project and its next steps.

The course's public names are kept: Discriminator(conv_dim), Generator(z_size, conv_dim),
build_network, real_loss, fake_loss, weights_init_normal, scale, get_dataloader.
"""
from ...data import get_dataloader, scale  # noqa: F401
from ...gan import fake_loss, gradient_penalty, num_stages, real_loss, sample_z, sampler  # noqa: F401
from ...gan import weights_init_normal, weights_init_xavier, wgan_d_loss, wgan_g_loss  # noqa: F401
from . import ui  # noqa: F401
from .config import PRESETS, DCGANConfig, config_for  # noqa: F401
from .nets import Discriminator, Generator, build_network  # noqa: F401
from .train import parts, build_trainer, evaluate, make_step, samples  # noqa: F401
