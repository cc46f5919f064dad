"""Per-modality encoders: each maps a prepared input window to one feature vector per sample.

Every encoder takes ``(N, *input_shape)`` float tensors and returns ``(N, feature_dim)``; the int
attribute ``feature_dim`` says how wide that vector is. Sizes are edge-sized: temporal convolutions
with global average + max pooling instead of the reference's flatten + Linear(1280) (see
cosmo-method.md section 5.2), so the window length can change without breaking a hard-coded size.

``build_encoder(modality, input_shape, **options)`` looks the modality up in ``ENCODER_REGISTRY``;
new modalities (radar) register a factory with ``register_encoder``.
"""

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

EncoderFactory = Callable[..., nn.Module]
ENCODER_REGISTRY: Dict[str, EncoderFactory] = {}


def register_encoder(modality: str, factory: EncoderFactory) -> None:
    """Make ``build_encoder(modality, ...)`` call ``factory(input_shape, **options)``."""
    if modality in ENCODER_REGISTRY:
        raise ValueError(f"an encoder is already registered for modality {modality!r}")
    ENCODER_REGISTRY[modality] = factory


def build_encoder(modality: str, input_shape: Tuple[int, ...], **options) -> nn.Module:
    """Build the encoder registered for ``modality``; unknown modalities raise ``KeyError``.

    The module remembers how it was built in ``build_spec`` ({"input_shape", "options"}), which is
    what checkpoints store to rebuild it.
    """
    if modality not in ENCODER_REGISTRY:
        known = ", ".join(sorted(ENCODER_REGISTRY))
        raise KeyError(f"no encoder registered for modality {modality!r} (known: {known})")
    shape = tuple(int(s) for s in input_shape)
    encoder = ENCODER_REGISTRY[modality](shape, **options)
    encoder.build_spec = {"input_shape": list(shape), "options": dict(options)}
    return encoder


def _conv1d_stack(
    in_channels: int, channels: Sequence[int], kernel_size: int, dropout: float, pool_after: Sequence[int]
) -> nn.Sequential:
    """Conv1d -> BN -> ReLU blocks ('same' padding); MaxPool1d(2) after the block indices in pool_after."""
    layers: List[nn.Module] = []
    previous = in_channels
    for index, width in enumerate(channels):
        layers += [
            nn.Conv1d(previous, width, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
        ]
        if index in pool_after:
            layers.append(nn.MaxPool1d(2))
        if dropout > 0 and index < len(channels) - 1:
            layers.append(nn.Dropout(dropout))
        previous = width
    return nn.Sequential(*layers)


def global_avg_max_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T) -> (N, 2C): mean over time concatenated with max over time."""
    return torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1)


class TemporalConvEncoder(nn.Module):
    """Temporal CNN over a (time, features) sequence with global average + max pooling.

    Used for IMU windows (120 steps x 6 channels). ``velocity`` appends first differences along time,
    which helps on slowly drifting signals. Output width: 2 * channels[-1].
    """

    def __init__(
        self,
        input_shape: Tuple[int, ...],
        channels: Sequence[int] = (64, 96, 128),
        kernel_size: int = 5,
        dropout: float = 0.1,
        velocity: bool = False,
        pool_after: Sequence[int] = (0, 1),
    ) -> None:
        super().__init__()
        if len(input_shape) < 2:
            raise ValueError(f"expected (time, features...) input, got shape {input_shape}")
        self.input_shape = tuple(input_shape)
        self.velocity = bool(velocity)
        num_features = 1
        for size in input_shape[1:]:
            num_features *= int(size)
        in_channels = num_features * (2 if self.velocity else 1)
        self.body = _conv1d_stack(in_channels, channels, kernel_size, dropout, pool_after)
        self.feature_dim = 2 * int(channels[-1])

    def sequence_input(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, ...) -> (N, C, T) channels-first, with velocity channels when enabled."""
        x = x.reshape(x.shape[0], x.shape[1], -1)
        if self.velocity:
            diff = torch.diff(x, dim=1, prepend=x[:, :1])
            x = torch.cat([x, diff], dim=2)
        return x.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, ...) -> (N, feature_dim)."""
        return global_avg_max_pool(self.body(self.sequence_input(x)))


class SkeletonEncoder(TemporalConvEncoder):
    """Temporal CNN over joint coordinates: (N, 40, 20, 3) -> 60 channels per frame (+ velocities).

    Kinect joints are few and the time axis carries the action, so a 1-D convolution over frames on
    the flattened joints is both cheap and strong on small data. ``center_joint`` (default 3, the hip
    centre in Kinect v1 order; None to disable) makes joint positions relative to that joint in every
    frame and adds its displacement since the first frame (3 channels), so where a subject stands
    stops mattering.
    """

    def __init__(
        self,
        input_shape: Tuple[int, ...],
        channels: Sequence[int] = (96, 128, 128),
        kernel_size: int = 5,
        dropout: float = 0.1,
        velocity: bool = True,
        pool_after: Sequence[int] = (0,),
        center_joint: Optional[int] = 3,
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"skeleton input must be (frames, joints, 3), got {input_shape}")
        if center_joint is not None and not 0 <= center_joint < input_shape[1]:
            raise ValueError(f"center_joint {center_joint} outside 0..{input_shape[1] - 1}")
        self.center_joint = center_joint
        extra = 0 if center_joint is None else 1
        shape = (input_shape[0], input_shape[1] + extra, input_shape[2])
        super().__init__(shape, channels, kernel_size, dropout, velocity, pool_after)
        self.input_shape = tuple(input_shape)

    def sequence_input(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, J, 3) -> (N, C, T), re-centred on ``center_joint`` when it is set."""
        if self.center_joint is not None:
            anchor = x[:, :, self.center_joint : self.center_joint + 1]
            displacement = anchor - anchor[:, :1]
            x = torch.cat([x - anchor, displacement], dim=2)
        return super().sequence_input(x)


class DepthEncoder(nn.Module):
    """Per-frame 2-D CNN plus a temporal model (cosmo-method.md section 5.3 (a)).

    ``frame_features(frames)`` maps (N, T, H, W) depth in metres to (N, T, C) per-frame vectors and
    does not mix frames, so a live daemon can cache it per frame across overlapping windows;
    ``temporal(per_frame)`` maps (N, T, C) to (N, feature_dim). ``input_pool`` area-averages each
    frame first (2 turns 60 x 80 into 30 x 40) to keep the cost per frame low on the device;
    ``frame_stride`` uses every k-th frame of the window (``forward`` applies it; a caller that caches
    ``frame_features`` must feed the same frames, ``window[:, ::frame_stride]``).
    """

    def __init__(
        self,
        input_shape: Tuple[int, ...],
        frame_channels: Sequence[int] = (16, 32, 64),
        input_pool: int = 2,
        temporal_channels: int = 128,
        kernel_size: int = 3,
        dropout: float = 0.1,
        frame_stride: int = 1,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"depth input must be (frames, height, width), got {input_shape}")
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.input_shape = tuple(input_shape)
        self.frame_stride = int(frame_stride)
        layers: List[nn.Module] = []
        if input_pool > 1:
            layers.append(nn.AvgPool2d(input_pool))
        previous = 1
        for width in frame_channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.frame_cnn = nn.Sequential(*layers)
        self.frame_dim = int(frame_channels[-1])
        self.temporal_body = _conv1d_stack(
            self.frame_dim, (temporal_channels, temporal_channels), kernel_size, dropout, pool_after=(0,)
        )
        self.feature_dim = 2 * int(temporal_channels)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) metres -> (N, T, frame_dim) globally pooled frame descriptors."""
        n, t = frames.shape[0], frames.shape[1]
        maps = self.frame_cnn(frames.reshape(n * t, 1, frames.shape[2], frames.shape[3]))
        return maps.mean(dim=(2, 3)).reshape(n, t, self.frame_dim)

    def temporal(self, per_frame: torch.Tensor) -> torch.Tensor:
        """(N, T, frame_dim) -> (N, feature_dim)."""
        return global_avg_max_pool(self.temporal_body(per_frame.transpose(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, H, W) -> (N, feature_dim)."""
        return self.temporal(self.frame_features(x[:, :: self.frame_stride]))


register_encoder("imu", TemporalConvEncoder)
register_encoder("skeleton", SkeletonEncoder)
register_encoder("depth", DepthEncoder)
# USC-HAD: accelerometer and gyroscope as separate (T, 3) modalities, the IMU architecture on each,
# so both encoders are equally wide and the SumAttn fusion operator applies.
register_encoder("acc", TemporalConvEncoder)
register_encoder("gyro", TemporalConvEncoder)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) in ``module``."""
    return int(sum(p.numel() for p in module.parameters()))
