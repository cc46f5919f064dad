"""FLOP and byte counting against hand counts and torch's own counter, and the peak measurements."""

import pytest
import torch
from torch import nn

from cosmo_edge.flops import count_flops, measure_bandwidth, measure_peak_flops, roofline_gflops


def test_linear_and_conv_hand_counts() -> None:
    linear = count_flops(nn.Linear(4, 3), torch.randn(2, 4))
    assert linear.flops_per_sample == 2 * 4 * 3 + 3  # MACs x 2 + bias
    conv = count_flops(nn.Conv1d(2, 4, 3, padding=1), torch.randn(5, 2, 10))
    assert conv.flops_per_sample == 2 * 2 * 3 * 4 * 10 + 4 * 10
    grouped = count_flops(nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False), torch.randn(1, 4, 6, 6))
    assert grouped.flops_per_sample == 2 * (4 // 2) * 9 * 8 * 36


def test_norm_pool_activation_counts() -> None:
    model = nn.Sequential(
        nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2), nn.AdaptiveAvgPool1d(1), nn.Dropout(0.5)
    )
    report = count_flops(model, torch.randn(3, 4, 8))
    # BN 2 x 32, ReLU 32, MaxPool 2 x 16 outputs, adaptive pool reads 16 inputs, dropout 0.
    assert report.flops_per_sample == 2 * 32 + 32 + 2 * 16 + 16
    assert report.uncounted == []


def test_gru_and_lstm_formulas() -> None:
    i, h, t = 5, 7, 11
    gru = count_flops(nn.GRU(i, h, batch_first=True), torch.randn(2, t, i))
    per_step = 2 * 3 * h * (i + h) + 2 * 3 * h + 11 * h
    assert gru.flops_per_sample == per_step * t
    lstm = count_flops(nn.LSTM(i, h, num_layers=2, bidirectional=True), torch.randn(t, 3, i), batch_size=3)
    layer0 = 2 * 4 * h * (i + h) + 2 * 4 * h + 13 * h
    layer1 = 2 * 4 * h * (2 * h + h) + 2 * 4 * h + 13 * h
    assert lstm.flops_per_sample == pytest.approx((layer0 + layer1) * 2 * t)  # two directions


def test_per_sample_counts_do_not_depend_on_batch_size() -> None:
    model = nn.Sequential(
        nn.Conv1d(6, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 20, 4)
    )
    one = count_flops(model, torch.randn(1, 6, 20))
    many = count_flops(model, torch.randn(8, 6, 20))
    assert one.flops_per_sample == many.flops_per_sample
    assert one.activation_bytes_per_sample == many.activation_bytes_per_sample
    assert one.input_bytes_per_sample == 6 * 20 * 4


def test_matches_torch_flop_counter_on_bias_free_convs_and_linears() -> None:
    flop_counter = pytest.importorskip("torch.utils.flop_counter")
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False),
        nn.Conv2d(8, 16, 3, padding=1, bias=False),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10, bias=False),
    ).eval()
    x = torch.randn(2, 1, 16, 16)
    with flop_counter.FlopCounterMode(display=False) as counter:
        model(x)
    assert count_flops(model, x).flops_per_sample * 2 == counter.get_total_flops()


def test_weight_bytes_training_flag_and_uncounted_modules() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.weight

    model = nn.Sequential(nn.Linear(3, 3), Scale(), nn.BatchNorm1d(3))
    model.train()
    report = count_flops(model, torch.randn(4, 3))
    assert model.training  # restored
    params = sum(p.numel() for p in model.parameters())
    # float32 parameters, BN running mean/var (float32) and num_batches_tracked (int64).
    assert report.weight_bytes == 4 * params + 4 * 6 + 8
    assert report.uncounted == ["1 (Scale)"]


def test_fusion_classifier_groups_by_encoder() -> None:
    from cosmo_edge.runtime import artifact_from_module
    from models.classifier import FusionClassifier
    from models.encoders import build_encoder

    shapes = {"imu": (120, 6), "skeleton": (40, 20, 3)}
    encoders = nn.ModuleDict({m: build_encoder(m, s) for m, s in shapes.items()})
    artifact = artifact_from_module(FusionClassifier(encoders, 5, [0.5, 0.5]), shapes, list("abcde"))
    report = count_flops(artifact.probability_module(), *artifact.example_tensors(2))
    groups = report.by_prefix(depth=3)
    assert groups["model.encoders.imu"] > 0 and groups["model.encoders.skeleton"] > 0
    assert sum(groups.values()) == pytest.approx(report.flops_per_sample)
    assert report.to_dict()["parameters"] == sum(p.numel() for p in artifact.model.parameters())


def test_peak_measurements_and_roofline() -> None:
    peak = measure_peak_flops(size=64, min_time_s=0.01, threads=1)
    assert peak["gflops_best"] >= peak["gflops_median"] > 0
    assert peak["threads"] == 1 and peak["repeats"] >= 3
    bandwidth = measure_bandwidth(megabytes=1, min_time_s=0.01)
    assert bandwidth["gbytes_per_s_best"] > 0
    assert roofline_gflops(2.0, peak_gflops=100.0, bandwidth_gbytes_per_s=10.0) == 20.0
    assert roofline_gflops(50.0, peak_gflops=100.0, bandwidth_gbytes_per_s=10.0) == 100.0
