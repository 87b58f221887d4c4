"""Hand-crafted per-note descriptors (audio and scattering) to relate network layers to known quantities:
the definitions (:mod:`.descriptors`), the descriptors file (:mod:`.store`) and ``scatterxai describe``
(:mod:`.run`: resumable, failure-tolerant, worker processes)."""
