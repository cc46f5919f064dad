"""Signal augmentations applied on top of the fused positives, on normalised training batches.

All functions take a batch dict {modality: (N, T, ...)} and a ``torch.Generator`` (seeded by the run)
and return new tensors. The time crop is *aligned* by default: one crop window (in normalised time)
per sample, shared by every modality, so the modalities of a sample still describe the same moment;
``crop_aligned = False`` draws one per modality, which stops stage 1 from matching modalities by
their shared timing alone. Then, per
modality: amplitude scaling, Gaussian jitter and a small rotation (IMU: one 3-D rotation for the
accelerometer and gyroscope triplets; skeleton: about the vertical axis). Depth gets the crop and a
range scale only (its zeros stay zeros).
"""

import logging
import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch

logger = logging.getLogger(__name__)


@dataclass
class AugmentConfig:
    """Augmentation strengths; ``enabled = False`` makes ``augment_batch`` return its input."""

    enabled: bool = True
    crop_min: float = 0.8  # shortest crop, as a fraction of the window (1.0 disables cropping)
    crop_aligned: bool = True  # one crop per sample for all modalities (False: one per modality)
    jitter_std: float = 0.05  # Gaussian noise, in normalised units
    scale_std: float = 0.1  # multiplicative amplitude factor ~ N(1, scale_std)
    rotation_deg: float = 15.0  # max rotation angle (uniform in [-rotation_deg, rotation_deg])


def _uniform(n: int, low: float, high: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def time_crop_resample(
    x: torch.Tensor, start: torch.Tensor, length: torch.Tensor, nearest: bool = False
) -> torch.Tensor:
    """Resample each sample's [start, start + length] (fractions of the window) back to T steps.

    Linear interpolation on the time axis (axis 1), or the nearest frame (depth: blending frames would
    smear silhouettes into the zero background); ``start`` and ``length`` are (N,) in [0, 1].
    """
    n, t = x.shape[0], x.shape[1]
    grid = torch.linspace(0.0, 1.0, t, dtype=torch.float64)
    pos = (start.double().unsqueeze(1) + length.double().unsqueeze(1) * grid) * (t - 1)
    pos = pos.clamp(0.0, float(t - 1))
    if nearest:  # one indexed copy: cheap even for (N, 40, 60, 80) depth clips
        return x[torch.arange(n).unsqueeze(1), pos.round().long()]
    flat = x.reshape(n, t, -1)
    low = pos.floor().long().clamp(max=max(t - 2, 0))
    frac = (pos - low.double()).to(flat.dtype).unsqueeze(-1)
    high = (low + 1).clamp(max=t - 1)
    index_low = low.unsqueeze(-1).expand(-1, -1, flat.shape[2])
    index_high = high.unsqueeze(-1).expand(-1, -1, flat.shape[2])
    out = torch.gather(flat, 1, index_low) * (1 - frac) + torch.gather(flat, 1, index_high) * frac
    return out.reshape(x.shape)


def rotation_matrices(angles_rad: torch.Tensor, axis: int) -> torch.Tensor:
    """(N,) angles -> (N, 3, 3) rotations about coordinate ``axis`` (0 = x, 1 = y, 2 = z)."""
    c, s = torch.cos(angles_rad), torch.sin(angles_rad)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    if axis == 0:
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == 1:
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


def random_rotations(n: int, max_deg: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(N, 3, 3) rotations composed of three small rotations about x, y and z."""
    limit = math.radians(max_deg)
    result = torch.eye(3).expand(n, 3, 3)
    for axis in range(3):
        result = result @ rotation_matrices(_uniform(n, -limit, limit, generator), axis)
    return result


def augment_imu(x: torch.Tensor, config: AugmentConfig, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(N, T, 6): one rotation for acc and gyro triplets, per-channel scale, jitter."""
    n = x.shape[0]
    if config.rotation_deg > 0 and x.shape[-1] == 6:
        rot = random_rotations(n, config.rotation_deg, generator).to(x)
        x = torch.cat([x[..., :3] @ rot.transpose(1, 2), x[..., 3:] @ rot.transpose(1, 2)], dim=-1)
    scale = 1.0 + config.scale_std * torch.randn(n, 1, x.shape[-1], generator=generator)
    noise = config.jitter_std * torch.randn(x.shape, generator=generator)
    return x * scale.to(x) + noise.to(x)


def augment_skeleton(
    x: torch.Tensor, config: AugmentConfig, generator: Optional[torch.Generator]
) -> torch.Tensor:
    """(N, T, J, 3): rotation about the vertical (y) axis, one scale per sample, jitter."""
    n = x.shape[0]
    if config.rotation_deg > 0:
        limit = math.radians(config.rotation_deg)
        rot = rotation_matrices(_uniform(n, -limit, limit, generator), axis=1).to(x)
        x = torch.einsum("ntjc,nkc->ntjk", x, rot)
    scale = 1.0 + config.scale_std * torch.randn(n, 1, 1, 1, generator=generator)
    noise = config.jitter_std * torch.randn(x.shape, generator=generator)
    return x * scale.to(x) + noise.to(x)


def augment_depth(
    x: torch.Tensor, config: AugmentConfig, generator: Optional[torch.Generator]
) -> torch.Tensor:
    """(N, T, H, W) metres: one range scale per sample (background zeros stay zero)."""
    scale = 1.0 + config.scale_std * torch.randn(x.shape[0], 1, 1, 1, generator=generator)
    return x * scale.to(x)


NEAREST_FRAME_MODALITIES = ("depth",)
MODALITY_AUGMENTERS = {"imu": augment_imu, "skeleton": augment_skeleton, "depth": augment_depth}


def augment_batch(
    inputs: Dict[str, torch.Tensor], config: AugmentConfig, generator: Optional[torch.Generator] = None
) -> Dict[str, torch.Tensor]:
    """Aligned time crop for every modality, then the modality's own augmentation (if any)."""
    if not config.enabled:
        return inputs
    n = next(iter(inputs.values())).shape[0]
    out: Dict[str, torch.Tensor] = {}
    crop = None
    for modality, x in inputs.items():
        if config.crop_min < 1.0:
            if crop is None or not config.crop_aligned:
                length = _uniform(n, config.crop_min, 1.0, generator)
                crop = (torch.rand(n, generator=generator) * (1.0 - length), length)
            x = time_crop_resample(x, crop[0], crop[1], nearest=modality in NEAREST_FRAME_MODALITIES)
        augmenter = MODALITY_AUGMENTERS.get(modality)
        out[modality] = augmenter(x, config, generator) if augmenter is not None else x
    return out
