"""mmWave radar encoder: a PointNet-style set encoder per frame, then a temporal conv over frames.

Input convention (shared with ``cosmo_edge.windows``, which packs live radar frames):

- a window is a float32 array ``(N, T, P, 4)``: ``T`` frames (``RADAR_FRAMES`` = 20 for a 2 s window at
  the radar's 20 Hz, nearest-frame resampled), each padded to ``P`` points (``RADAR_MAX_POINTS`` = 64),
  each point ``(x, y, z, doppler)`` in metres (radar-relative) and m/s;
- padding rows are exact zeros, and a point is valid iff ``x^2 + y^2 + z^2 >= MIN_RANGE_M^2``. A radar
  cannot detect a target at its own antenna, so no real point is lost; packers drop the (physically
  impossible) points closer than ``MIN_RANGE_M``. The mask is derived from the tensor itself, so the
  encoder keeps the one-tensor interface of every encoder (``(N, *input_shape) -> (N, feature_dim)``);
- a frame with more than ``P`` points keeps ``P`` of them at evenly spaced indices in arrival order
  (deterministic, keeps the spatial spread); see ``pack_frame_points`` for the reference rule.

Why this shape: every layer is one that torch2trt converts with TensorRT 8.2 in implicit-batch mode
(Conv2d, BatchNorm2d, ReLU, ``torch.max``/``torch.sum``/``torch.mean`` over non-batch dims, ``clamp``,
elementwise arithmetic, ``permute``, ``unsqueeze``, ``cat``, a 2-D ``Linear``), the batch dimension is
never reshaped, and the ONNX export at opset 13 uses only ops of the onnx-tensorrt 8.2 matrix. There
is no GRU (torch2trt has no converter for it): a two-layer temporal convolution with max + mean pooling
over frames replaces it. The masked max pools post-ReLU features (>= 0) multiplied by the mask, which
equals the max over the valid points whenever a frame has one; an empty frame gets a learned vector.

The per-frame part (``frame_features``) is exposed so the daemon can cache it per radar frame across
overlapping windows; ``temporal(frame_features(x)) == forward(x)`` exactly.
"""

import logging
from typing import Sequence, Tuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

RADAR_FRAMES = 20
RADAR_MAX_POINTS = 64
POINT_FEATURES = 4
MIN_RANGE_M = 0.01
INPUT_SHAPE = (RADAR_FRAMES, RADAR_MAX_POINTS, POINT_FEATURES)


def valid_point_mask(points: torch.Tensor) -> torch.Tensor:
    """Return a float mask (1 valid, 0 padding) of shape ``points.shape[:-1]`` for ``(..., 4)`` points.

    Points between 0 and ``MIN_RANGE_M`` from the sensor get a fractional weight; packers never
    produce them (see the module docstring).
    """
    r2_m2 = torch.sum(points[..., 0:3] * points[..., 0:3], -1)
    return torch.clamp(r2_m2 * (1.0 / MIN_RANGE_M**2), 0.0, 1.0)


def pack_frame_points(points: torch.Tensor, max_points: int = RADAR_MAX_POINTS) -> torch.Tensor:
    """Pack one frame's ``(n, 4)`` points into the padded ``(max_points, 4)`` layout (reference rule).

    Drops points closer than ``MIN_RANGE_M``; keeps ``max_points`` of the rest at evenly spaced indices
    in arrival order when there are more; pads with zero rows.
    """
    if points.ndim != 2 or points.shape[1] != POINT_FEATURES:
        raise ValueError(f"expected points of shape (n, {POINT_FEATURES}), got {tuple(points.shape)}")
    points = points.to(torch.float32)
    keep = torch.sum(points[:, 0:3] * points[:, 0:3], 1) >= MIN_RANGE_M**2
    points = points[keep]
    if points.shape[0] > max_points:
        index = torch.linspace(0, points.shape[0] - 1, max_points).round().long()
        points = points[index]
    out = torch.zeros((max_points, POINT_FEATURES), dtype=torch.float32)
    out[: points.shape[0]] = points
    return out


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: Tuple[int, int], padding: Tuple[int, int]) -> nn.Module:
    """Conv2d (no bias: BatchNorm follows) + BatchNorm2d + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=False),
    )


class RadarEncoder(nn.Module):
    """Radar point-cloud windows ``(N, T, P, 4)`` to features ``(N, feature_dim)``.

    Args:
        input_shape: ``(T, P, 4)``; T frames of P points.
        point_channels: widths of the shared per-point MLP (1x1 convolutions).
        temporal_channels: width of the two temporal convolutions over frames.
        temporal_kernel: frames seen by each temporal convolution (odd).
        feature_dim: size of the output vector.
    """

    def __init__(
        self,
        input_shape: Sequence[int] = INPUT_SHAPE,
        point_channels: Sequence[int] = (32, 64),
        temporal_channels: int = 64,
        temporal_kernel: int = 3,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        input_shape = tuple(int(v) for v in input_shape)
        if len(input_shape) != 3 or input_shape[2] != POINT_FEATURES:
            raise ValueError(f"radar input_shape must be (T, P, {POINT_FEATURES}), got {input_shape}")
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.input_shape = input_shape
        self.max_points = input_shape[1]
        layers = []
        in_ch = POINT_FEATURES
        for width in point_channels:
            layers.append(_conv_bn_relu(in_ch, int(width), (1, 1), (0, 0)))
            in_ch = int(width)
        self.point_mlp = nn.Sequential(*layers)
        self.frame_dim = 2 * in_ch  # max and mean pooled
        # Learned stand-in for a frame without points, shaped to broadcast over (N, frame_dim, T).
        self.empty_frame = nn.Parameter(torch.zeros(1, self.frame_dim, 1))
        pad = temporal_kernel // 2
        self.temporal_net = nn.Sequential(
            _conv_bn_relu(self.frame_dim, temporal_channels, (temporal_kernel, 1), (pad, 0)),
            _conv_bn_relu(temporal_channels, temporal_channels, (temporal_kernel, 1), (pad, 0)),
        )
        self.head = nn.Linear(2 * temporal_channels, feature_dim)
        self.feature_dim = int(feature_dim)

    def frame_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-frame set features: ``(N, T, P, 4)`` points to ``(N, T, frame_dim)``.

        Each frame is encoded independently of the others (eval mode), so a frame's row can be cached
        and reused by every window that contains the frame.
        """
        x = points.permute(0, 3, 1, 2)  # (N, 4, T, P)
        mask = valid_point_mask(points).unsqueeze(1)  # (N, 1, T, P)
        h = self.point_mlp(x) * mask  # (N, C, T, P), >= 0, zero at padding
        pooled_max = torch.max(h, 3)[0]  # (N, C, T)
        count = torch.sum(mask, 3)  # (N, 1, T)
        pooled_mean = torch.sum(h, 3) / torch.clamp(count, 1.0, float(self.max_points))
        pooled = torch.cat([pooled_max, pooled_mean], 1)  # (N, 2C, T)
        has_points = torch.clamp(count, 0.0, 1.0)
        pooled = self.empty_frame + has_points * (pooled - self.empty_frame)
        return pooled.permute(0, 2, 1)  # (N, T, 2C)

    def temporal(self, per_frame: torch.Tensor) -> torch.Tensor:
        """Temporal part: ``(N, T, frame_dim)`` per-frame features to ``(N, feature_dim)``."""
        x = per_frame.permute(0, 2, 1).unsqueeze(3)  # (N, frame_dim, T, 1)
        h = self.temporal_net(x)  # (N, H, T, 1)
        h_max = torch.max(torch.max(h, 3)[0], 2)[0]  # (N, H)
        h_mean = torch.mean(h, (2, 3))  # (N, H)
        return self.head(torch.cat([h_max, h_mean], 1))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``(N, T, P, 4)`` radar windows to ``(N, feature_dim)`` features."""
        return self.temporal(self.frame_features(points))


def register() -> None:
    """Register ``RadarEncoder`` as ``build_encoder("radar", ...)``; idempotent."""
    from models.encoders import ENCODER_REGISTRY, register_encoder

    if "radar" not in ENCODER_REGISTRY:
        register_encoder("radar", RadarEncoder)


register()
