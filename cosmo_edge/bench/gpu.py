"""GPU utilisation while a backend runs, where the machine can say it.

Sources, first that works: the Jetson GPU load file (``/sys/devices/gpu.0/load`` or
``/sys/devices/platform/gpu.0/load``, per mille: what tegrastats prints as ``GR3D_FREQ``), then NVML
through ``torch.cuda.utilization()`` (needs a CUDA device and the ``pynvml`` package). Elsewhere
``probe_gpu_load`` says why there is none. ``GpuLoadSampler`` polls the source in a thread while a
timed loop runs and reports the mean and maximum percent.
"""

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

JETSON_LOAD_FILES = ("sys/devices/gpu.0/load", "sys/devices/platform/gpu.0/load")
POLL_S = 0.1

ReadPercent = Callable[[], float]


def _jetson_reader(path: Path) -> ReadPercent:
    def read() -> float:
        return int(path.read_text(encoding="ascii").strip()) / 10.0  # per mille -> percent

    return read


def _nvml_reader() -> Tuple[Optional[ReadPercent], str]:
    try:
        import torch
    except ImportError as exc:
        return None, f"torch does not import ({exc})"
    if not torch.cuda.is_available():
        return None, "no CUDA device and no Jetson GPU load file"
    try:
        torch.cuda.utilization()
    except (ImportError, ModuleNotFoundError, RuntimeError) as exc:  # pynvml absent, NVML failing
        return None, f"CUDA present but NVML utilisation unreadable ({exc})"
    return lambda: float(torch.cuda.utilization()), ""


def probe_gpu_load(sysfs_root: str = "/") -> Tuple[Optional[ReadPercent], str, str]:
    """``(read_percent, source, reason)``; ``read_percent`` is None (with the reason) where none exists."""
    for rel in JETSON_LOAD_FILES:
        path = Path(sysfs_root) / rel
        try:
            _jetson_reader(path)()
        except (OSError, ValueError) as exc:
            logger.debug("no Jetson GPU load at %s: %s", path, exc)
            continue
        return _jetson_reader(path), f"jetson {path}", ""
    reader, reason = _nvml_reader()
    return reader, ("nvml" if reader else "none"), reason


class GpuLoadSampler:
    """Poll ``read_percent`` every ``POLL_S`` between ``start()`` and ``stop()``; inert when it is None."""

    def __init__(self, read_percent: Optional[ReadPercent], poll_s: float = POLL_S) -> None:
        self._read = read_percent
        self._poll_s = poll_s
        self._values: List[float] = []
        self._errors = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._read is None:
            return
        self._values, self._errors = [], 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gpu-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._read is not None
        while True:
            try:
                self._values.append(self._read())
            except (OSError, ValueError, RuntimeError) as exc:
                self._errors += 1
                logger.debug("GPU load read failed: %s", exc)
            if self._stop.wait(self._poll_s):
                return

    def stop(self) -> Dict[str, Any]:
        """``{samples, mean_percent, max_percent, read_errors}`` (empty dict when inert)."""
        if self._thread is None:
            return {}
        self._stop.set()
        self._thread.join(5)
        self._thread = None
        values = self._values
        return {
            "samples": len(values),
            "mean_percent": sum(values) / len(values) if values else None,
            "max_percent": max(values) if values else None,
            "read_errors": self._errors,
        }
