"""What every model stands on: paths, runtime (seed, device, profile), configs, checkpoints, the training loop."""
