"""Face GAN Lab helpers: everything the notebooks share (data, training loop, metrics, models).

Notebooks start with `import helpers as H; S = H.setup(seed=0, profile=profile, data=data)`.
"""
from .runtime import setup  # noqa: F401
