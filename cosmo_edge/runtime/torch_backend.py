"""Torch eager backend: the reference every other backend is compared against.

Runs the artifact's classifier on the CPU (or a given device) under ``torch.no_grad()``. ``threads``
sets torch's intra-op thread count, which is process-wide: the daemon sets it once.
"""

import logging
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from cosmo_edge.runtime.artifacts import ModelArtifact, ProbabilityModel
from cosmo_edge.runtime.base import Backend

logger = logging.getLogger(__name__)


class TorchBackend(Backend):
    """Eager PyTorch inference (float32)."""

    name = "torch"

    def __init__(
        self, threads: int = 1, cache_dir: Optional[Union[str, Path]] = None, device: str = "cpu"
    ) -> None:
        super().__init__()
        self.threads = int(threads)
        self.device = device
        self._module: Optional[ProbabilityModel] = None
        del cache_dir  # nothing to cache for eager execution

    @classmethod
    def availability(cls) -> Tuple[bool, str]:
        """Usable wherever torch imports."""
        try:
            import torch
        except ImportError as exc:
            return False, f"torch does not import ({exc})"
        return True, f"torch {torch.__version__} eager"

    def _load(self, artifact: ModelArtifact) -> None:
        import torch

        if self.threads > 0 and torch.get_num_threads() != self.threads:
            logger.info("torch intra-op threads: %d -> %d", torch.get_num_threads(), self.threads)
            torch.set_num_threads(self.threads)
        self._module = artifact.probability_module().to(self.device).eval()

    def _predict(self, arrays: List[np.ndarray]) -> np.ndarray:
        import torch

        assert self._module is not None
        tensors = [torch.from_numpy(a).to(self.device) for a in arrays]
        with torch.no_grad():
            probs = self._module(*tensors)
        return probs.detach().cpu().float().numpy()
