"""Fader Networks (notebook 02): encoder, attribute-conditioned decoder, latent discriminator, sliders."""
from . import ui  # noqa: F401
from .config import PRESETS, FaderConfig, config_for  # noqa: F401
from .evaluate import (KEEP_BEST, codes, decode, encode, evaluate, latent_accuracy, load_nets, scores,  # noqa: F401
                       select_model, summary_row, val_tracker)
from .nets import (INJECT, Decoder, Encoder, LatentDiscriminator, attribute_maps, build_networks,  # noqa: F401
                   channel_ladder, flip_one, num_layers)
from .train import (parts, adversarial_loss, build_trainer, class_weights, discriminator_loss,  # noqa: F401
                    lambda_at, make_step, reconstruction_loss, train_run, uses_channels_last)


def sampler(nets: dict):
    """Return what edits are drawn from: the encoder and the decoder, (E, G)."""
    return nets["E"], nets["G"]
