"""Plots: maps on the (λ1, λ2) plane, spectrograms, confusion matrices, the paper's figures.

Plot functions take ``ax=None`` and return the artist; nothing here saves files or imports torch.
"""
