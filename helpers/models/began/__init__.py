"""BEGAN (notebook 04): boundary equilibrium, the autoencoder discriminator, and latent interpolation."""
from ...gan import sampler  # noqa: F401
from . import ui  # noqa: F401
from .config import PRESETS, BEGANConfig, config_for  # noqa: F401
from .nets import (Decoder, Discriminator, Encoder, Equilibrium, build_network, d_loss,  # noqa: F401
                   init_weights, m_global, num_blocks, recon_loss, update_k)
from .train import parts, build_trainer, epoch_tracker, evaluate, fine_tune, load_weights, make_step, samples  # noqa: F401
