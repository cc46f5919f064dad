"""Every call the real classifier makes has a torch2trt converter (upstream v0.4.0 or ours)."""

import pytest
import torch
from runtime_models import ALL_MODALITIES, build_artifact

from cosmo_edge.runtime.trt_converters import MIXED_DTYPE_NAMES, OUR_CONVERTERS

unconverted_calls = pytest.importorskip("cosmo_edge.runtime.trt_coverage").unconverted_calls


def test_full_classifier_is_covered_with_our_converters() -> None:
    artifact = build_artifact(ALL_MODALITIES)
    module, inputs = artifact.probability_module(), artifact.example_tensors(1)
    assert unconverted_calls(module, inputs, list(OUR_CONVERTERS), MIXED_DTYPE_NAMES) == []


def test_checker_reports_what_upstream_torch2trt_lacks() -> None:
    """Without our additions the checker must flag the gaps (proves it is not vacuous)."""
    artifact = build_artifact(ALL_MODALITIES)
    problems = unconverted_calls(artifact.probability_module(), artifact.example_tensors(1))
    assert "no converter: torch.Tensor.masked_fill" in problems
    assert any(p.startswith("mixed dtypes") for p in problems)


def test_unsupported_layers_and_nesting() -> None:
    class WithGru(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(4, 8, batch_first=True)
            self.conv = torch.nn.Conv2d(1, 2, 3)  # its inner F.conv2d is converted with the module

        def forward(self, x):
            return self.gru(x)[0].sum() + self.conv(x[:, None]).mean()

    problems = unconverted_calls(WithGru(), [torch.randn(1, 5, 4)])
    assert "no converter: torch.gru" in problems  # nothing about conv2d: converted with its module
    assert not any("conv2d" in p for p in problems), problems
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    assert unconverted_calls(plain, [torch.randn(1, 1, 5, 5)]) == []
