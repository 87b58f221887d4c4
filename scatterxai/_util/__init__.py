"""Small helpers shared by every stage: validation, atomic writes, JSON, logging, tables.

Nothing here imports torch (see :mod:`scatterxai._util.device` for the one helper that does).
"""
