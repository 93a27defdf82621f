"""The SMiLE converter (notebook 03): ACGAN and Wasserstein ACGAN with feature matching, and an
encoder trained against the frozen generator: smiling <-> not smiling."""
from ...gan import sampler  # noqa: F401
from . import ui  # noqa: F401
from .config import PRESETS, EncoderConfig, GANConfig, SmileConfig, config_for  # noqa: F401
from .convert import (class_accuracy, conversion_metrics, conversion_table, convert, encode, evaluate,  # noqa: F401
                      fd_oracle, latent_cycle_error, metrics_record, sample_index, samples, switch_class)
from .nets import (ACDiscriminator, CondGenerator, Critic, Encoder, TwoHeads, build_gan, class_code, class_loss,  # noqa: F401
                   clip_weights, critic_schedule, feature_matching, image_loss, prior_penalty)
from .train import (GAN_PARTS, build_encoder_trainer, build_gan_trainer, build_trainer, fixed_inputs,  # noqa: F401
                    make_encoder_step, make_gan_step, parts, trained_gans)
