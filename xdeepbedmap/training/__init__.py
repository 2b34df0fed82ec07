"""Training DeepBedMap: tiles, losses, the GAN trainer and hyperparameter tuning."""
