"""The command line's argument types: bounded numbers, and the inputs and outputs of every command.

Every numeric option is parsed by a :func:`number` type with explicit bounds, so that a value that would make a
run meaningless or unbounded (``--scale 1e9``, ``--epsilon 1e300``, ``--dpi 100000``, NaN, inf) is refused
before anything runs; the bounds are attributes of the type (``parse.bounds``), which the tests read from the
parser.  Input and output arguments are marked (:func:`input_arg`, :func:`output_arg`) with their kind, so
that :func:`check_outputs` applies the output rule (:mod:`scatterxai._util.outputs`) to every command the same
way, and the tests build every command's inputs from the parser.  Nothing heavy is imported here.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Dict, Optional, Union

from .validate import SEED_LIMIT

__all__ = ["number", "input_arg", "output_arg", "check_outputs", "INPUT_LABELS", "BOUNDS", "SEED"]

#: upper bounds of the numeric options (lower bounds are given per type)
BOUNDS = {"scale": 10.0, "batch": 1024, "jobs": 256, "epochs": 10_000, "count": 10_000_000, "steps": 10_000,
          "epsilon": 1.0, "dpi": 1200.0, "seconds": 3600.0, "seeds": 100, "channel": 4096, "sigma": 1.0,
          "folds": 100}


def number(convert: Callable, lo: float, hi: float, what: str, *, lo_open: bool = False) -> Callable:
    """An argparse type: ``convert`` the text and check ``lo ≤ value ≤ hi`` (``lo < value`` with
    ``lo_open``); NaN and inf are refused.  The bounds are ``parse.bounds = (lo, hi, lo_open)``."""
    low = f"{'>' if lo_open else '>='} {lo:g}"

    def parse(text):
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what} ({low} and <= {hi:g}), got {text}")
        return value

    parse.__name__ = what.replace(" ", "_")
    parse.bounds = (lo, hi, lo_open)
    return parse


#: argparse type of a seed: what :func:`scatterxai._util.validate.check_seed` accepts
SEED = number(int, 0, SEED_LIMIT - 1, "an integer seed in [0, 2**32)")


#: labels of the input kinds, for messages
INPUT_LABELS = {"meta_csv": "meta CSV", "audio_root": "audio root", "features": "features input",
                "model": "model directory", "relevance": "relevance input", "descriptors": "descriptors input",
                "audio": "audio input", "features_or_audio": "input", "sol_root": "SOL root",
                "permuted_model": "permuted-label model", "run_dir": "run directory"}


def input_arg(p: argparse.ArgumentParser, *flags: str, kind: str, **kwargs: Any) -> argparse.Action:
    """``p.add_argument`` of an input path of kind ``kind`` (a key of :data:`INPUT_LABELS`)."""
    if kind not in INPUT_LABELS:
        raise ValueError(f"input kind {kind!r} is not one of {sorted(INPUT_LABELS)}")
    action = p.add_argument(*flags, **kwargs)
    action.scatterxai_input = kind
    return action


def output_arg(p: argparse.ArgumentParser, *flags: str, kind: Union[str, Callable[[argparse.Namespace], str]],
               **kwargs: Any) -> argparse.Action:
    """``p.add_argument`` of the command's output; ``kind`` is an output kind of
    :data:`scatterxai._util.outputs.KINDS` or ``args → kind`` (when the inputs decide)."""
    action = p.add_argument(*flags, **kwargs)
    action.scatterxai_output = kind
    return action


def _actions(parser: argparse.ArgumentParser, command: str) -> list:
    for action in parser._actions:   # noqa: SLF001 - argparse has no public API for its sub-parsers
        if isinstance(action, argparse._SubParsersAction):   # noqa: SLF001
            return list(action.choices[command]._actions)   # noqa: SLF001
    return []


def command_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict[str, object]:
    """label → value of every input argument given to ``args.command``."""
    out = {}
    for action in _actions(parser, args.command):
        kind = getattr(action, "scatterxai_input", None)
        value = getattr(args, action.dest, None)
        if kind is not None and value is not None:
            out[INPUT_LABELS[kind]] = value
    return out


def check_outputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Optional[str]:
    """Apply the output rule to the output of ``args.command`` before it runs (the commands claim their
    output again when they write: this check only fails early, before any work); returns the output kind."""
    from .outputs import check_output
    inputs = command_inputs(parser, args)
    for action in _actions(parser, args.command):
        kind = getattr(action, "scatterxai_output", None)
        value = getattr(args, action.dest, None)
        if kind is None or value is None:
            continue
        kind = kind(args) if callable(kind) else kind
        option = action.option_strings[0] if action.option_strings else action.metavar or action.dest
        check_output(value, kind=kind, inputs=inputs, overwrite=bool(getattr(args, "overwrite", False)),
                     option=option, create=False)
        return kind
    return None
