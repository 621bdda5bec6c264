"""The inference precompile and the results providers of its execution modes."""

from ogevm.precompile.inference import InferenceReverted, inference_precompile
from ogevm.precompile.modes import (
    CaptureProvider,
    CatalogueProvider,
    InlineProvider,
    ReplayProvider,
)

__all__ = [
    "CaptureProvider",
    "CatalogueProvider",
    "InferenceReverted",
    "InlineProvider",
    "ReplayProvider",
    "inference_precompile",
]
