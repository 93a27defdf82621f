"""Face GAN Lab helpers: everything the notebooks share. The folders tell the architecture:

    core/    paths, runtime (seed, device, profile), configs, checkpoints, the one training loop
    gan/     what several GANs share: losses, DCGAN blocks, latents, inversion, DiffAugment
    data/    face sources -> uint8 cache -> FaceSet -> loader
    eval/    the oracle, metrics, FID/KID and face judges, evaluation sizes, metrics.json
    ui/      figures, widgets (render functions + one thin shell), data exploration
    models/  dcgan/ fader/ smile/ began/ lapgan/: config, nets, train, ui (the same contract)
    tools/   bench, gpu_check, run_notebooks, the headless train entry

Notebooks start with `import helpers as H; session = H.setup(seed=0, profile=profile, data=data)`
and reach the rest as attributes: H.dcgan is helpers.models.dcgan, H.viz is helpers.ui.viz, and so
on through SHORT_NAMES below (plus the folders themselves: H.data, H.gan, ...). This is the one
place those short names are defined: a module-level __getattr__ (PEP 562) that imports the module
on first use, so one model's code is never a cost (or a failure) for another's notebook. Code and
tests import the real paths (`from helpers.models import dcgan`).
"""
import importlib

from .core.runtime import setup  # noqa: F401

# H.<short name> -> the module it stands for, below helpers/.
SHORT_NAMES = {
    "dcgan": "models.dcgan", "fader": "models.fader", "smile": "models.smile", "began": "models.began",
    "lapgan": "models.lapgan", "paths": "core.paths", "runtime": "core.runtime", "config": "core.config",
    "checkpoint": "core.checkpoint", "published": "core.published", "train": "core.train", "oracle": "eval.oracle", "metrics": "eval.metrics",
    "report": "eval.report", "presets": "eval.presets", "panel": "eval.panel", "fid": "eval.fid",
    "judges": "eval.judges", "viz": "ui.viz", "widgets": "ui.widgets", "explore": "ui.explore",
}


def __getattr__(name: str):
    """Return helpers.<SHORT_NAMES[name] or name>, imported on first attribute access (PEP 562)."""
    if name.startswith("_"):
        raise AttributeError(name)
    target = f"{__name__}.{SHORT_NAMES.get(name, name)}"
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as err:
        if err.name != target:
            raise  # the module exists but one of its own imports is missing
        raise AttributeError(f"module 'helpers' has no attribute {name!r}") from None
