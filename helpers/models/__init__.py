"""The five models, one package each with the same contract (see ARCHITECTURE in the README):

    config_for(profile, **overrides) -> Config          config.py: the dataclass and its presets
    build_trainer(cfg, faces, device, ckpt_dir, ...)    train.py: the step and the Trainer around it
        -> (trainer, nets)
    sampler(nets)                                       what to draw samples from
    evaluate(nets, cfg, judges, test, n) -> dict        the numbers metrics.json reports
    parts(cfg) -> {name: build_trainer kwargs}          the trainers a full run has (LAPGAN: one per level)

nets.py holds the networks, ui.py the figures and sliders. No model package imports another:
shared parts come from helpers.gan and helpers.core.
"""
MODELS = ("dcgan", "fader", "smile", "began", "lapgan")
