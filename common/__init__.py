"""Shared, paper-agnostic code for the autoencoder reproductions.

Datasets (`common.data`), the training loop (`common.train`), a notebook's run and its
named models (`common.run`), evaluation (`common.evaluate`), figures (`common.plots`),
reports and the scorecard (`common.report`) and the batch runner (`common.reproduce`). No paper's math lives here: each paper folder
holds its own model and loss.
"""
from common.paths import REPO_ROOT, profile_from_env, select_profile
from common.run import Run

__all__ = ["REPO_ROOT", "Run", "profile_from_env", "select_profile"]
