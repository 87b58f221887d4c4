"""The attribution-method seam: an :class:`Explainer` per method, registered by name.

Every method — LRP presets, gradients, perturbations — turns a batch of network inputs (B, C, T) into
relevance of the same shape for one logit per example; everything downstream (local maps, aggregation,
kurtosis, localisation, export, comparison, quality checks) is the same for all of them.  A new method is
a subclass registered with :func:`register` (Zennit's register-by-name pattern for composites); nothing
else changes.

An explainer is configured once (its parameters, validated in ``__init__`` and recorded by :meth:`attrs`
as HDF5 attributes of ``/relevance/<name>``) and then run in a *session* on a private copy of the network
(:meth:`Explainer.session`), which yields a function ``run(x, target) -> (logits, relevance)``:
``target`` is None (explain the predicted class) or a LongTensor (B,) of classes.

Two optional channels carry data that are not parameters:

* **context** (:attr:`Explainer.context`): constructor arguments derived from the model, not recorded as
  parameters — e.g. occlusion needs the path table (``paths``) and the model's input at the training mean
  (``mean_input``).  The ``explain`` stage fills them from the loaded model.
* **per-example inputs** (:meth:`Explainer.per_example_inputs`): arrays (K, ...) sliced with the batch and
  passed to ``run`` as keywords — e.g. Integrated Gradients' per-example baseline.  ``run`` may then return
  a third element, a dict of per-example tensors (e.g. ``baseline_logits``) that
  :class:`~scatterxai.explain.attribute.Attribution` keeps in ``extras``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple, Type, Union

from ..errors import ParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["Explainer", "register", "get_explainer", "available_methods", "REGISTRY", "RunFn"]

#: ``run(x, target) -> (logits, relevance)`` as yielded by :meth:`Explainer.session`
RunFn = Callable[..., Tuple["object", "object"]]
#: method name → Explainer subclass
REGISTRY: Dict[str, Type[Explainer]] = {}


class Explainer:
    """An attribution method with fixed parameters.

    Subclasses set :attr:`name`, :attr:`family` and :attr:`summary`, validate their parameters in
    ``__init__`` (keyword-only, with defaults) and implement :meth:`session`.
    """

    #: registry key (also the HDF5 dataset name)
    name: ClassVar[str] = ""
    #: "lrp", "gradient" or "perturbation" (:data:`FAMILIES`)
    family: ClassVar[str] = ""
    #: one line for the README and ``--help``
    summary: ClassVar[str] = ""
    #: many network passes per example (the pipeline explains a class-stratified subset with it)
    slow: ClassVar[bool] = False
    #: constructor arguments the ``explain`` stage derives from the model ("paths", "mean_input")
    context: ClassVar[Tuple[str, ...]] = ()

    def per_example_inputs(self) -> Tuple[str, ...]:
        """Names of the per-example arrays ``run`` needs as keywords (sliced with each batch)."""
        return ()

    def params(self) -> dict:
        """The method's parameters (JSON/HDF5-friendly scalars and strings)."""
        return {}

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


def register(cls: Type[Explainer]) -> Type[Explainer]:
    """Class decorator: add an :class:`Explainer` subclass to :data:`REGISTRY` under its ``name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"explainer name {cls.name!r} is empty or already registered")
    REGISTRY[cls.name] = cls
    return cls


#: order of the families in :func:`available_methods`
FAMILIES = ("lrp", "gradient", "perturbation")


def available_methods(family: Optional[str] = None) -> List[str]:
    """Registered method names (of one family if given): by family (:data:`FAMILIES`, others last), then
    in registration order.

    The built-in methods register themselves when :mod:`scatterxai.explain` is imported (which importing
    this module implies)."""
    names = [n for n, c in REGISTRY.items() if family is None or c.family == family]
    rank = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(names, key=lambda n: rank.get(REGISTRY[n].family, len(FAMILIES)))


def get_explainer(method: Union[str, Explainer], **params: Any) -> Explainer:
    """An explainer instance: ``method`` is a registered name (``params`` go to its constructor, unknown
    ones are an error) or an :class:`Explainer` instance (returned as is; ``params`` must be empty)."""
    if isinstance(method, Explainer):
        if params:
            raise ParameterError(f"parameters {sorted(params)} given with an Explainer instance; set them "
                                 f"when constructing it")
        return method
    if method not in REGISTRY:
        raise ParameterError(f"unknown attribution method {method!r}; valid methods are {list(REGISTRY)}")
    cls = REGISTRY[method]
    try:
        return cls(**params)
    except TypeError as e:
        raise ParameterError(f"bad parameters for method {method!r}: {e}") from None
