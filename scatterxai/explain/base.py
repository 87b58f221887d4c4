"""The attribution-method seam: an :class:`Explainer` per method, registered by name — the one list of methods.

Every method — LRP presets, gradients, perturbations — turns a batch of network inputs (B, C, T) into
relevance of the same shape for one logit per example; everything downstream (local maps, aggregation,
kurtosis, localisation, export, comparison, quality checks) is the same for all of them.

An explainer class says everything about its method once, as class attributes that need no torch:

* :attr:`~Explainer.name` (registry key, HDF5 dataset name), :attr:`~Explainer.title` (display name in
  reports and figures), :attr:`~Explainer.family`, :attr:`~Explainer.summary` (one line for ``--help`` and the
  HDF5 ``description``), :attr:`~Explainer.slow` (the pipeline explains a class-stratified subset with it);
* :attr:`~Explainer.parameters`: one :class:`Param` per constructor keyword — type and bounds (validated by
  the generic constructor), default, help line and ``scatterxai explain`` option.

From the registry come the command line's ``--methods`` list and method options, the pipeline's method
list (every registered method), and the titles of reports and figures.  A new method is one module in
:mod:`scatterxai.explain.methods` (found there automatically) holding a registered subclass; its module
imports torch and Zennit inside :meth:`~Explainer.session` only, so that ``scatterxai --help`` stays light
(Zennit's register-by-name pattern for composites, with the metadata kept importable without torch).

An explainer is configured once (its parameters, validated by the constructor and recorded by
:meth:`~Explainer.attrs` as HDF5 attributes of ``/relevance/<name>``) and then run in a *session* on a private
copy of the network (:meth:`Explainer.session`), which yields a function ``run(x, target) -> (logits,
relevance)``: ``target`` is None (explain the predicted class) or a LongTensor (B,) of classes.

Two optional channels carry data that are not parameters:

* **context** (:attr:`Explainer.context`): constructor arguments derived from the model, not recorded as
  parameters — e.g. occlusion needs the path table (``paths``) and the model's input at the training mean
  (``mean_input``).  The ``explain`` stage fills them from the loaded model; :meth:`Explainer.setup` takes
  them.
* **per-example inputs** (:meth:`Explainer.per_example_inputs`): arrays (K, ...) sliced with the batch and
  passed to ``run`` as keywords — e.g. Integrated Gradients' per-example baseline.  ``run`` may then return
  a third element, a dict of per-example tensors (e.g. ``baseline_logits``) that
  :class:`~scatterxai.explain.attribution.Attribution` keeps in ``extras``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple, Type, Union

from .._util.validate import check_choice, check_float, check_int, check_positive_float, check_positive_int, check_seed
from ..errors import ParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["Explainer", "Param", "register", "registered", "unregistered", "get_explainer", "available_methods",
           "method_title", "REGISTRY", "FAMILIES", "RunFn"]

#: ``run(x, target) -> (logits, relevance)`` as yielded by :meth:`Explainer.session`
RunFn = Callable[..., Tuple["object", "object"]]
#: method name → Explainer subclass (filled by :func:`register`; the built-in methods of
#: :mod:`scatterxai.explain.methods` are registered when :mod:`scatterxai.explain` is imported)
REGISTRY: Dict[str, Type[Explainer]] = {}
#: order of the families in :func:`available_methods`
FAMILIES = ("lrp", "gradient", "perturbation")
#: kinds of :class:`Param`
PARAM_KINDS = ("int", "float", "seed", "choice", "bool")


@dataclass(frozen=True)
class Param:
    """One parameter of an attribution method, declared once.

    Parameters
    ----------
    name : str
        Constructor keyword (and attribute of the instance).
    default : object
        Value when not given (None only with ``optional``).
    help : str
        One line: what it does, with its unit (``--help`` prefixes the method's title and appends the default).
    kind : {"int", "float", "seed", "choice", "bool"}
        ``"seed"`` is an integer in [0, 2**32).
    low : float, optional
        Smallest valid value of an int or float (inclusive unless ``low_open``).
    low_open : bool
        ``low`` itself is excluded (floats).
    high : float, optional
        Largest valid value of an int or float (inclusive); the command line caps unbounded ones (see
        :data:`scatterxai._util.cliargs.BOUNDS`).
    choices : tuple of str
        Valid values of a choice.
    flag : str, optional
        Option of ``scatterxai explain`` (e.g. ``"--ig-steps"``); None: Python API only.
    cli_choices : tuple of str, optional
        The choices the command line offers, when some need Python (default: all of ``choices``).
    metavar : str, optional
        Placeholder of the option's value in ``--help``.
    optional : bool
        None is valid (meaning "not set").
    """

    name: str
    default: Any
    help: str
    kind: str = "int"
    low: Optional[float] = None
    low_open: bool = False
    high: Optional[float] = None
    choices: Tuple[str, ...] = ()
    flag: Optional[str] = None
    cli_choices: Optional[Tuple[str, ...]] = None
    metavar: Optional[str] = None
    optional: bool = False

    def __post_init__(self):
        if self.kind not in PARAM_KINDS:
            raise ParameterError(f"Param {self.name!r}: kind must be one of {list(PARAM_KINDS)}, got {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ParameterError(f"Param {self.name!r}: a choice needs choices")
        if self.flag is not None and not self.flag.startswith("--"):
            raise ParameterError(f"Param {self.name!r}: flag must start with '--', got {self.flag!r}")
        if self.default is not None or not self.optional:
            self.check(self.default)

    def check(self, value: Any) -> Any:
        """``value`` validated and converted (int, float, str or bool); a ParameterError names what is valid."""
        if value is None and self.optional:
            return None
        if self.kind == "choice":
            return check_choice(self.name, value, self.choices)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ParameterError(f"{self.name} must be True or False, got {value!r}")
            return value
        if self.kind == "seed":
            return check_seed(self.name, value)
        if self.kind == "int":
            if self.low == 1 and self.high is None:
                return check_positive_int(self.name, value)
            return check_int(self.name, value, low=self.low, high=self.high)
        if self.low == 0 and self.low_open and self.high is None:
            return check_positive_float(self.name, value)
        return check_float(self.name, value, low=self.low, high=self.high, low_open=self.low_open)

    @property
    def dest(self) -> Optional[str]:
        """argparse destination of :attr:`flag` (``--ig-steps`` → ``ig_steps``)."""
        return None if self.flag is None else self.flag[2:].replace("-", "_")


class Explainer:
    """An attribution method with fixed parameters.

    Subclasses set the class attributes below and implement :meth:`session`; the constructor validates the
    keyword arguments against :attr:`parameters` (unknown ones are an error) and sets each as an attribute.
    A subclass checks combinations of parameters and takes its :attr:`context` in :meth:`setup`.
    """

    #: registry key (also the HDF5 dataset name)
    name: ClassVar[str] = ""
    #: display name in reports and figures
    title: ClassVar[str] = ""
    #: "lrp", "gradient" or "perturbation" (:data:`FAMILIES`)
    family: ClassVar[str] = ""
    #: one line for ``--help`` and the HDF5 ``description``
    summary: ClassVar[str] = ""
    #: the method's parameters, in the order they are recorded
    parameters: ClassVar[Tuple[Param, ...]] = ()
    #: many network passes per example (the pipeline explains a class-stratified subset with it)
    slow: ClassVar[bool] = False
    #: the same relevance whatever the batch size (False for methods that draw noise per batch)
    batch_invariant: ClassVar[bool] = True
    #: constructor arguments the ``explain`` stage derives from the model ("paths", "mean_input")
    context: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, **kwargs: Any):
        names = [p.name for p in self.parameters]
        unknown = sorted(set(kwargs) - set(names) - set(self.context))
        if unknown:
            raise ParameterError(f"unknown parameters {unknown} of method {self.name!r}; its parameters are "
                                 f"{names}" + (f" (and the context {list(self.context)})" if self.context else ""))
        for p in self.parameters:
            setattr(self, p.name, p.check(kwargs.get(p.name, p.default)))
        self.setup(**{k: kwargs.get(k) for k in self.context})

    def setup(self, **context: Any) -> None:
        """Check combinations of parameters and take the :attr:`context` arguments (None when not given)."""

    @classmethod
    def parameter_names(cls) -> Tuple[str, ...]:
        """Names of :attr:`parameters` (the constructor keywords besides the context)."""
        return tuple(p.name for p in cls.parameters)

    def per_example_inputs(self) -> Tuple[str, ...]:
        """Names of the per-example arrays ``run`` needs as keywords (sliced with each batch)."""
        return ()

    def params(self) -> dict:
        """The method's parameters as recorded (JSON/HDF5-friendly scalars and strings; unset ones left out)."""
        return {p.name: getattr(self, p.name) for p in self.parameters if getattr(self, p.name) is not None}

    def attrs(self) -> dict:
        """Attributes of ``/relevance/<name>``: family, description, parameters."""
        return {"family": self.family, "description": self.summary, **self.params()}

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        """Prepare ``model`` (a private eval-mode copy, parameters frozen) and yield ``run(x, target)``."""
        raise NotImplementedError
        yield  # pragma: no cover

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def _check_class(cls: Type[Explainer]) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise ParameterError(f"only Explainer subclasses can be registered, got {cls!r}")
    if not cls.name or cls.name in REGISTRY:
        raise ParameterError(f"explainer name {cls.name!r} is empty or already registered")
    missing = [a for a in ("title", "family", "summary") if not getattr(cls, a)]
    if missing:
        raise ParameterError(f"explainer {cls.name!r} needs the class attributes {missing}")
    names = [p.name for p in cls.parameters]
    if len(set(names)) != len(names) or set(names) & set(cls.context):
        raise ParameterError(f"explainer {cls.name!r}: parameter names {names} repeat or clash with the context "
                             f"{list(cls.context)}")


def register(cls: Type[Explainer]) -> Type[Explainer]:
    """Class decorator: add an :class:`Explainer` subclass to :data:`REGISTRY` under its ``name``.

    Its options on the command line must not clash with those of registered methods (checked here).
    """
    _check_class(cls)
    flags = {p.flag: n for n, c in REGISTRY.items() for p in c.parameters if p.flag}
    clash = [f"{p.flag} (of {flags[p.flag]!r})" for p in cls.parameters if p.flag in flags]
    if clash:
        raise ParameterError(f"explainer {cls.name!r}: options {clash} are taken")
    REGISTRY[cls.name] = cls
    return cls


@contextlib.contextmanager
def registered(*classes: Type[Explainer]) -> Iterator[None]:
    """Register explainer classes for the duration of a ``with`` block (tests, experiments); they are removed
    afterwards, whatever happens in the block.

    Examples
    --------
    >>> from scatterxai.explain import Explainer, Param, available_methods, registered
    >>> class Ones(Explainer):
    ...     name, title, family, summary = "ones", "ones", "gradient", "relevance 1 everywhere"
    >>> with registered(Ones):
    ...     "ones" in available_methods()
    True
    >>> "ones" in available_methods()
    False
    """
    done = []
    try:
        for cls in classes:
            done.append(register(cls))
        yield
    finally:
        for cls in done:
            REGISTRY.pop(cls.name, None)


@contextlib.contextmanager
def unregistered(*names: str) -> Iterator[None]:
    """Remove registered methods for the duration of a ``with`` block, and put them back afterwards (tests of
    files written by a method that is not registered where they are read)."""
    missing = [n for n in names if n not in REGISTRY]
    if missing:
        raise ParameterError(f"methods {missing} are not registered; registered are {list(REGISTRY)}")
    saved = {n: REGISTRY.pop(n) for n in names}
    try:
        yield
    finally:
        REGISTRY.update(saved)


def available_methods(family: Optional[str] = None) -> List[str]:
    """Registered method names (of one family if given): by family (:data:`FAMILIES`, others last), then
    in registration order.

    The built-in methods register themselves when :mod:`scatterxai.explain` is imported (which importing
    this module implies)."""
    names = [n for n, c in REGISTRY.items() if family is None or c.family == family]
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(names, key=lambda n: rank.get(REGISTRY[n].family, len(FAMILIES)))


def method_title(name: str) -> str:
    """Display name of a method (its :attr:`Explainer.title`); the name itself if it is not registered."""
    cls = REGISTRY.get(name)
    return cls.title if cls is not None else name


def get_explainer(method: Union[str, Explainer], **params: Any) -> Explainer:
    """An explainer instance: ``method`` is a registered name (``params`` go to its constructor, unknown
    ones are an error) or an :class:`Explainer` instance (returned as is; ``params`` must be empty)."""
    if isinstance(method, Explainer):
        if params:
            raise ParameterError(f"parameters {sorted(params)} given with an Explainer instance; set them "
                                 f"when constructing it")
        return method
    if method not in REGISTRY:
        raise ParameterError(f"unknown attribution method {method!r}; valid methods are {available_methods()}")
    try:
        return REGISTRY[method](**params)
    except TypeError as e:   # a subclass with its own constructor signature
        raise ParameterError(f"bad parameters for method {method!r}: {e}") from None
