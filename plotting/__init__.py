"""Regenerate the paper's figures and tables from local results (or wandb): ``python -m plotting``."""
