"""Per-frame feature caching across overlapping windows (depth and radar).

With ``window_s`` = 2 s and ``hop_s`` = 0.5 s, three quarters of a window's depth and radar frames were
already in the previous window. Their encoders split into ``frame_features`` (each frame alone) and
``temporal`` (across frames), so a frame's features depend only on the frame: computing them once and
reusing them is exact, not an approximation (eval mode; BatchNorm uses running statistics).

- ``FrameFeatureCache``: a bounded LRU map from a frame key (the frame's host timestamp in ns) to its
  feature row, for one modality; computes only the rows it lacks, in one batched call, and counts
  hits, misses and evictions. Repeated frames inside one window (nearest-frame resampling repeats a
  frame when the sensor delivered fewer than the model's T) are computed once as well.
- ``CachedFramePredictor``: eager-torch inference that routes the cached modalities through their
  caches, then their ``temporal`` parts, runs the other encoders as usual, and finishes with the
  classifier's ``classify(features, present)`` (fusion and head).
  Build one per model version (after a fine-tune or rollback, a new one): cached rows are only valid
  for the model that computed them.

The caller passes, per cached modality, the key of the source frame behind each of the T model frames
(``frame_keys[modality]``: ``(N, T)`` int64), i.e. the timestamps of the frames the window picked.
"""

import collections
import logging
from typing import Callable, Dict, List, Mapping, Optional, OrderedDict, Sequence

import numpy as np
import torch

from cosmo_edge.runtime.artifacts import ModelArtifact
from cosmo_edge.runtime.base import prepare_batch

logger = logging.getLogger(__name__)


class FrameFeatureCache:
    """LRU cache ``frame key -> feature row`` for one modality of one model version."""

    def __init__(self, capacity_frames: int) -> None:
        if capacity_frames < 1:
            raise ValueError(f"capacity_frames must be >= 1, got {capacity_frames}")
        self.capacity_frames = int(capacity_frames)
        self._rows: OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Forget every row (the counters stay)."""
        self._rows.clear()

    def counters(self) -> Dict[str, int]:
        """hits, misses, evictions and current size, for the status message."""
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions, "size": len(self)}

    def features(
        self, keys: Sequence[int], frames: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """Feature rows ``(T, D)`` for ``frames`` ``(T, ...)`` whose keys are ``keys`` ``(T,)``.

        ``compute(frames_subset) -> (B, D)`` is called at most once, on the first occurrence of each
        key not cached yet. Frames that share a key must be identical (same source frame).
        """
        keys = [int(k) for k in keys]
        if len(keys) != len(frames):
            raise ValueError(f"{len(keys)} keys for {len(frames)} frames")
        missing: Dict[int, int] = {}  # key -> index of its first occurrence
        for index, key in enumerate(keys):
            if key in self._rows:
                self._rows.move_to_end(key)
            elif key not in missing:
                missing[key] = index
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            rows = np.asarray(compute(frames[list(missing.values())]))
            if rows.shape[0] != len(missing):
                raise ValueError(f"compute returned {rows.shape[0]} rows for {len(missing)} frames")
            for key, row in zip(missing, rows):
                self._rows[key] = row
        out = np.stack([self._rows[k] for k in keys])
        while len(self._rows) > self.capacity_frames:
            self._rows.popitem(last=False)
            self.evictions += 1
        return out


def frame_cacheable(model: torch.nn.Module) -> List[str]:
    """Modalities of ``model`` whose encoders expose ``frame_features`` and ``temporal``."""
    encoders = getattr(model, "encoders", {})
    return [m for m, enc in encoders.items() if hasattr(enc, "frame_features") and hasattr(enc, "temporal")]


class CachedFramePredictor:
    """Eager inference with per-frame feature caches for ``modalities`` (default: every cacheable one).

    ``predict(batch, frame_keys)`` returns the same probabilities as ``TorchBackend.predict(batch)``
    (up to float rounding of batched vs single-frame convolutions) while computing each frame once.
    """

    def __init__(
        self,
        artifact: ModelArtifact,
        capacity_frames: int = 256,
        modalities: Optional[Sequence[str]] = None,
    ) -> None:
        cacheable = frame_cacheable(artifact.model)
        chosen = list(modalities) if modalities is not None else cacheable
        unknown = [m for m in chosen if m not in cacheable]
        if unknown:
            raise ValueError(
                f"modalities {unknown} have no frame_features/temporal split (cacheable: {cacheable})"
            )
        self.artifact = artifact
        self.modalities = chosen
        self.caches = {m: FrameFeatureCache(capacity_frames) for m in chosen}
        self._model = artifact.model.eval()
        logger.info("per-frame caches for %s (%d frames each)", chosen, capacity_frames)

    def counters(self) -> Dict[str, Dict[str, int]]:
        """Per-modality cache counters."""
        return {m: cache.counters() for m, cache in self.caches.items()}

    def _frame_rows(self, modality: str, frames: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            rows = self._model.encoders[modality].frame_features(torch.from_numpy(frames).unsqueeze(0))
        return rows[0].numpy()

    def predict(self, batch: Mapping[str, np.ndarray], frame_keys: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probabilities ``(N, K)``; ``frame_keys[m]`` is ``(N, T)`` frame keys for each cached modality."""
        artifact = self.artifact
        arrays = prepare_batch(batch, artifact.modalities, artifact.input_shapes)
        features: List[torch.Tensor] = []
        for index, modality in enumerate(artifact.modalities):
            data = arrays[index]
            encoder = self._model.encoders[modality]
            if modality in self.caches:
                keys = np.asarray(frame_keys[modality])
                if keys.shape != data.shape[:2]:
                    raise ValueError(f"frame_keys[{modality}]: shape {keys.shape}, expected {data.shape[:2]}")
                per_sample = [
                    self.caches[modality].features(
                        keys[i], data[i], lambda f, m=modality: self._frame_rows(m, f)
                    )
                    for i in range(data.shape[0])
                ]
                with torch.no_grad():
                    features.append(encoder.temporal(torch.from_numpy(np.stack(per_sample))))
            else:
                with torch.no_grad():
                    features.append(encoder(torch.from_numpy(data)))
        with torch.no_grad():
            logits = self._model.classify(features, torch.from_numpy(arrays[-1]))
            return torch.softmax(logits, 1).numpy()
