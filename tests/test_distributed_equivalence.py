"""2 gloo processes with batch B train like 1 process with batch 2B; distributed QoM equals one process.

Setup (``distributed_support.training_setup``): 32 synthetic samples (imu + skeleton), global batch
16 (8 per process), 4 views, augmentation on, dropout off (dropout masks are drawn per rank), 3
epochs = 6 SGD steps with momentum and an lr milestone. Variants: float64 with each way of drawing
the views (``global``, ``sample``) and with two augmented copies per sample; float32.

Tolerances: float64, every step's loss within 1e-10 relative and the final weights within 1e-9
(measured: at most 1e-14 and 3e-13, i.e. the same arithmetic up to summation order). float32,
every step's loss within 1e-5 relative (measured: at most 2.1e-6; float32 rounding differences of
about 1e-7 per step grow with training, which the float64 runs show is not a difference in the
computation).
"""

import numpy as np
import pytest
import torch
from distributed_support import spawn_gloo, train, training_body, training_setup

from cosmo_edge.training.distributed import DistContext

WORLD = 2
FLOAT64 = ["float64", "float64-sample-draws", "float64-two-copies"]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return spawn_gloo(training_body, WORLD, tmp_path_factory.mktemp("training"))


@pytest.fixture(scope="module")
def single():
    torch.set_num_threads(1)
    return {variant: train(DistContext.single(), variant) for variant in FLOAT64 + ["float32"]}


@pytest.mark.parametrize("variant", FLOAT64)
def test_two_processes_compute_the_same_losses_as_one_process_float64(ranks, single, variant: str) -> None:
    reference = single[variant]
    assert len(reference["steps"]) == 6
    for r in range(WORLD):
        got = ranks[r][variant]
        np.testing.assert_allclose(got["steps"], reference["steps"], rtol=1e-10, atol=0)
        epoch_losses = [row["loss"] for row in got["history"]]
        np.testing.assert_allclose(epoch_losses, [row["loss"] for row in reference["history"]], rtol=1e-10)


@pytest.mark.parametrize("variant", FLOAT64)
def test_two_processes_end_with_the_single_process_weights_float64(ranks, single, variant: str) -> None:
    reference = single[variant]["state"]
    initial = training_setup(torch.float64)[0].state_dict()
    moved = max(float((reference[k] - v).abs().max()) for k, v in initial.items() if v.is_floating_point())
    assert moved > 1e-2  # training changed the weights, so matching them at 1e-9 means something
    for r in range(WORLD):
        state = ranks[r][variant]["state"]
        assert set(state) == set(reference)  # plain BatchNorm keys after training
        for key, value in reference.items():
            assert state[key].dtype == value.dtype, key
            torch.testing.assert_close(state[key], value, rtol=0, atol=1e-9)


def test_two_processes_compute_the_same_losses_as_one_process_float32(ranks, single) -> None:
    reference = single["float32"]["steps"]
    for r in range(WORLD):
        np.testing.assert_allclose(ranks[r]["float32"]["steps"], reference, rtol=1e-5, atol=0)


def test_the_ways_of_drawing_views_differ(single) -> None:
    """The variants are not one run under three names."""
    losses = {variant: single[variant]["steps"][0] for variant in FLOAT64}
    assert len(set(losses.values())) == len(FLOAT64)


def test_distributed_qom_equals_single_process_qom_on_the_same_model(ranks) -> None:
    record, single_record = ranks[0]["qom"], ranks[0]["qom_single"]
    assert ranks[1]["qom"]["weights"] == record["weights"]  # broadcast to every rank
    assert record["k_star"] == single_record["k_star"]
    np.testing.assert_allclose(record["hopkins"], single_record["hopkins"], rtol=1e-6)
    np.testing.assert_allclose(record["weights"], single_record["weights"], rtol=1e-6)
