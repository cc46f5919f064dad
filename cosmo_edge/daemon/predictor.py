"""From a cut ``Window`` to class probabilities: checkpoint normalisation, then the backend.

``WindowPredictor.predict(window, frame_keys)`` applies the z-score statistics stored in the checkpoint
(``preprocess.Normalization``: the same constants training used) to the window's prepared inputs,
builds a batch of one with ``present`` in the model's modality order, and runs it either through the
backend or, where the runtime offers it (eager torch: ``runtime.frame_cache.CachedFramePredictor``),
through per-frame feature caches for depth and radar, so that frames shared by overlapping windows
are encoded once.

The cache needs the source frame behind each model frame. ``Window`` does not carry frame stamps, so
``frame_keys`` reads the stamps of the window's span back from each ring (stamps only, no frame data)
and picks them with the same ``nearest_frame_indices`` the cutter used. The span lies ``delay_s`` in the
past and rings refuse late samples, so the stamps are the ones the cutter saw; when the count differs
anyway (a ring wrapped meanwhile) the window goes through the backend without the cache.
"""

import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from cosmo_edge import preprocess
from cosmo_edge.daemon.wiring import ring_stamps
from cosmo_edge.windows import StreamChannel, Window

logger = logging.getLogger(__name__)

FRAME_CACHE_CHOICES = ("auto", "on", "off")
ABSENT_FRAME_KEY = -1  # every frame of a missing modality is the same zero frame


def frame_keys(
    window: Window, channels: Mapping[str, StreamChannel], frames: Mapping[str, int]
) -> Optional[Dict[str, np.ndarray]]:
    """``(T,)`` int64 frame stamps per modality in ``frames`` (modality -> T), or None on a mismatch."""
    keys: Dict[str, np.ndarray] = {}
    for modality, length in frames.items():
        channel = channels.get(modality)
        if not window.present.get(modality, False) or channel is None:
            keys[modality] = np.full(length, ABSENT_FRAME_KEY, dtype=np.int64)
            continue
        stamps = ring_stamps(channel.ring, window.t_start_ns, window.t_end_ns)
        if len(stamps) != window.counts.get(modality):
            return None
        keys[modality] = stamps[preprocess.nearest_frame_indices(len(stamps), length)].astype(np.int64)
    return keys


class WindowPredictor:
    """Normalise a window and classify it; see the module docstring.

    Args:
        artifact: the loaded model (``cosmo_edge.runtime.ModelArtifact``).
        backend: a loaded, warmed-up ``cosmo_edge.runtime.Backend``.
        frame_cache: ``"auto"`` (use the per-frame cache when the backend is eager torch), ``"on"``
            (always, running eager torch for every window), ``"off"``.
        cache_frames: frames kept per cached modality (frames).
    """

    def __init__(
        self, artifact: Any, backend: Any, frame_cache: str = "auto", cache_frames: int = 256
    ) -> None:
        from cosmo_edge.runtime.frame_cache import CachedFramePredictor, frame_cacheable

        if frame_cache not in FRAME_CACHE_CHOICES:
            raise ValueError(f"frame_cache must be one of {FRAME_CACHE_CHOICES}, got {frame_cache!r}")
        self.artifact = artifact
        self.backend = backend
        self.modalities = list(artifact.modalities)
        self.label_names = list(artifact.label_names)
        self.version = str(artifact.version)
        self.normalization = None
        if artifact.normalization is not None:
            self.normalization = preprocess.Normalization.from_dict(artifact.normalization)
        cacheable = [m for m in frame_cacheable(artifact.model) if m in ("depth", "radar")]
        use = frame_cache == "on" or (frame_cache == "auto" and backend.name == "torch")
        self.cached = CachedFramePredictor(artifact, cache_frames, cacheable) if use and cacheable else None
        self.cache_frames = {m: int(artifact.input_shapes[m][0]) for m in (cacheable if self.cached else [])}
        self.counters: Dict[str, int] = {"predictions": 0, "cached": 0, "cache_bypass": 0}
        logger.info(
            "predictor: model %s on %s, per-frame cache %s",
            self.version,
            backend.name,
            sorted(self.cache_frames) if self.cached else "off",
        )

    @property
    def engine(self) -> str:
        """What runs the model: the backend name, with ``+frame-cache`` when the cache is used."""
        return "torch+frame-cache" if self.cached is not None else str(self.backend.name)

    def batch(self, window: Window) -> Dict[str, np.ndarray]:
        """The normalised batch of one window (modalities in model order, then ``present``)."""
        inputs = {m: window.inputs[m] for m in self.modalities}
        if self.normalization is not None:
            inputs = self.normalization.apply(inputs)
        batch = {m: np.asarray(inputs[m], dtype=np.float32)[None] for m in self.modalities}
        batch["present"] = window.present_vector(self.modalities)[None]
        return batch

    def predict(self, window: Window, channels: Optional[Mapping[str, StreamChannel]] = None) -> np.ndarray:
        """Class probabilities ``(K,)`` for ``window`` (``channels`` give the frame stamps for the cache)."""
        batch = self.batch(window)
        self.counters["predictions"] += 1
        if self.cached is not None:
            keys = frame_keys(window, channels or {}, self.cache_frames)
            if keys is not None:
                self.counters["cached"] += 1
                return self.cached.predict(batch, {m: k[None] for m, k in keys.items()})[0]
            self.counters["cache_bypass"] += 1
        return self.backend.predict(batch)[0]

    def cache_counters(self) -> Dict[str, Any]:
        """Per-modality cache hits/misses plus the predictor's own counts."""
        out: Dict[str, Any] = dict(self.counters)
        if self.cached is not None:
            out["frames"] = self.cached.counters()
        return out


def load_predictor(
    path: Union[str, Path],
    backend_name: str = "auto",
    threads: int = 1,
    cache_dir: Optional[Union[str, Path]] = None,
    frame_cache: str = "auto",
    warmup_iterations: int = 5,
) -> WindowPredictor:
    """Load the checkpoint, pick and load the backend, warm it up (self-test) and wrap it."""
    import models.radar  # noqa: F401  (registers the radar encoder a checkpoint may name)
    from cosmo_edge.runtime import load_artifact, select_backend

    artifact = load_artifact(path)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    backend = select_backend(backend_name, threads=threads, cache_dir=cache_dir)
    backend.load(artifact)
    backend.warmup(iterations=warmup_iterations)
    return WindowPredictor(artifact, backend, frame_cache=frame_cache)
