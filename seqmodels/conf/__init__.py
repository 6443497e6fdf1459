"""Hydra configs of seqmodels, shipped as package data and read as ``pkg://seqmodels.conf``."""
