"""Hand-crafted per-note descriptors (audio and scattering) to relate network layers to known quantities."""
