"""Face GAN Lab helpers: everything the notebooks share. The folders tell the architecture:

    core/    paths, runtime (seed, device, profile), configs, checkpoints, the one training loop
    gan/     what several GANs share: losses, DCGAN blocks, latents, inversion, DiffAugment
    data/    face sources -> uint8 cache -> FaceSet -> loader
    eval/    the oracle, metrics, FID/KID and face judges, evaluation sizes, metrics.json
    ui/      figures, widgets (render functions + one thin shell), data exploration
    models/  dcgan/ fader/ smile/ began/ lapgan/: config, nets, train, ui (the same contract)
    tools/   bench, gpu_check, run_notebooks, the headless train entry

Notebooks start with `import helpers as H; session = H.setup(seed=0, profile=profile, data=data)`
and reach the rest as H.dcgan, H.fader, H.smile, H.began, H.lapgan (the model packages), H.data,
H.gan, H.viz, H.widgets, H.paths, H.metrics, H.oracle, ... Modules load on first use, so one
model's code is never a cost (or a failure) for another's notebook. `import helpers.dcgan` and
`from helpers.viz import make_grid` keep working as before the layout moved.
"""
import importlib
import importlib.abc
import importlib.util
import sys

from .core.runtime import setup  # noqa: F401

# Short names -> where the code lives (also the import paths notebooks and users relied on).
ALIASES = {
    "dcgan": "models.dcgan", "fader": "models.fader", "smile": "models.smile", "began": "models.began",
    "lapgan": "models.lapgan", "paths": "core.paths", "runtime": "core.runtime", "config": "core.config",
    "checkpoint": "core.checkpoint", "train": "core.train", "oracle": "eval.oracle", "metrics": "eval.metrics",
    "report": "eval.report", "presets": "eval.presets", "panel": "eval.panel", "fid": "eval.fid", "judges": "eval.judges", "viz": "ui.viz", "widgets": "ui.widgets", "explore": "ui.explore",
}


def __getattr__(name: str):
    """Import helpers.<name> (or what ALIASES maps it to) on first attribute access (PEP 562)."""
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{ALIASES.get(name, name)}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{ALIASES.get(name, name)}":
            raise  # the module exists but one of its own imports is missing
        raise AttributeError(f"module 'helpers' has no attribute {name!r}") from None


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import helpers.dcgan` load helpers.models.dcgan (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        head, _, tail = fullname.partition(".")
        if head == __name__ and tail in ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{ALIASES[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__  # importlib is about to give the module this alias's spec
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # its own spec back (reloads, pickling)


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.append(_AliasFinder())
