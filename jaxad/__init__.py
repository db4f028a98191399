"""jaxad: deep anomaly detection in JAX/Flax.

Layers (each imports only those to its left):
models <- losses <- methods <- train <- detector / experiments; data and metrics stand aside.
"""

from jaxad._cache import enable_compilation_cache

enable_compilation_cache()

from jaxad import data, losses, metrics  # noqa: E402
from jaxad.detector import Detector  # noqa: E402
from jaxad.methods import METHODS, get_method, resolve_config  # noqa: E402
from jaxad.train import DivergenceError, FitResult, fit, score  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Detector", "data", "losses", "metrics", "DivergenceError", "FitResult", "METHODS", "fit", "get_method",
           "resolve_config", "score"]
