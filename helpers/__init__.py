"""Face GAN Lab helpers: everything the notebooks share (data, training loop, metrics, models).

Notebooks start with `import helpers as H; S = H.setup(seed=0, profile=profile, data=data)` and
reach the rest as H.data, H.viz, H.train, H.oracle, H.metrics, H.paths, ...
"""
from . import checkpoint, data, dcgan, dcgan_train, explore, latent, metrics, oracle, paths, runtime, train, viz, weights, widgets  # noqa: F401,E501
from .runtime import setup  # noqa: F401
