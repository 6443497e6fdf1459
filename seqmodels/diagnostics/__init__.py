"""Diagnostics: numerics against ``torch.nn.RNN``, gradients through time, and plots."""
