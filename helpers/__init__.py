"""Face GAN Lab helpers: everything the notebooks share (data, training loop, metrics, models).

Notebooks start with `import helpers as H; S = H.setup(seed=0, profile=profile, data=data)` and
reach the rest as H.data, H.viz, H.train, H.oracle, H.metrics, H.paths, ... Model modules
(H.fader, H.smile, H.began, H.lapgan, ...) are imported on first use, so one model's module is
never a cost (or a failure) for another's notebook.
"""
import importlib

from . import checkpoint, data, dcgan, dcgan_train, explore, latent, metrics, oracle, paths, runtime, train, viz, weights, widgets  # noqa: F401,E501
from .runtime import setup  # noqa: F401


def __getattr__(name: str):
    """Import helpers.<name> on first attribute access (module-level __getattr__, PEP 562)."""
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise  # the module exists but one of its own imports is missing
        raise AttributeError(f"module 'helpers' has no attribute {name!r}") from None
