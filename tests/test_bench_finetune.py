"""The fine-tuning section's arithmetic (label counts, draws, ratios, energy per run) and its start model."""

import numpy as np
import pytest

from cosmo_edge.bench.finetune import attach_energy
from cosmo_edge.bench.finetune_labels import draw_labeled, labels_per_class, rate_key
from cosmo_edge.bench.paper_table3 import PAPER_TABLE3, comparison, cosmo_ratios, paper_ratios, ratio
from cosmo_edge.bench.suite import _run_energy
from cosmo_edge.bundled import SIM_MODEL
from cosmo_edge.bundled.confused import confused_model
from cosmo_edge.energy import MeterOptions, probe_meter
from cosmo_edge.energy.fake_sysfs import write_tx2
from cosmo_edge.energy.integrate import Trace, idle_power_w
from cosmo_edge.training.checkpoint import read_checkpoint


def test_labels_per_class_rounds_half_up_keeps_one_and_caps_at_the_count() -> None:
    counts = {0: 100, 1: 150, 2: 3, 3: 49, 4: 0}
    assert labels_per_class(counts, 0.01) == {0: 1, 1: 2, 2: 1, 3: 1}  # 1.5 -> 2, 0.03 -> 1
    assert labels_per_class(counts, 0.02) == {0: 2, 1: 3, 2: 1, 3: 1}  # 0.98 -> 1
    assert labels_per_class({0: 2}, 1.0) == {0: 2}
    # at least 2 (the round holds one out per class), still never more than the class has
    assert labels_per_class(counts, 0.01, minimum=2) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert labels_per_class({0: 1, 1: 400}, 0.01, minimum=2) == {0: 1, 1: 4}
    with pytest.raises(ValueError):
        labels_per_class(counts, 0.0)
    with pytest.raises(ValueError):
        labels_per_class(counts, 0.01, minimum=0)


def test_draw_labeled_takes_the_counts_from_the_pool_only() -> None:
    labels = np.repeat(np.arange(3), [300, 120, 40])
    pool = np.arange(0, labels.size, 2)  # every other window; the rest is "test"
    index = draw_labeled(labels, pool, 0.02, seed=3)
    assert set(index) <= set(pool) and len(set(index)) == index.size
    assert np.bincount(labels[index]).tolist() == [3, 1, 1]  # 150 -> 3, 60 -> 1.2 -> 1, 20 -> 0.4 -> 1
    assert np.array_equal(index, draw_labeled(labels, pool, 0.02, seed=3))
    assert not np.array_equal(index, draw_labeled(labels, pool, 0.02, seed=4))
    assert np.bincount(labels[draw_labeled(labels, pool, 0.02, seed=3, minimum=2)]).tolist() == [3, 2, 2]


def test_confused_model_exchanges_only_the_named_output_rows(tmp_path) -> None:
    original = read_checkpoint(SIM_MODEL, kind="classifier")
    swapped = read_checkpoint(confused_model(tmp_path / "c.pt"), kind="classifier")
    names = list(original["label_names"])
    head = max(k for k in original["state_dict"] if k.startswith("head.") and k.endswith(".weight"))
    for key in (head, head[: -len("weight")] + "bias"):
        before, after = original["state_dict"][key], swapped["state_dict"][key]
        order = list(range(len(names)))
        for a, b in (("wave", "clap"), ("squat", "sit")):
            i, j = names.index(a), names.index(b)
            order[i], order[j] = j, i
        assert not np.array_equal(before.numpy(), after.numpy())
        assert np.array_equal(after.numpy(), before.numpy()[order])
    untouched = [k for k in original["state_dict"] if not k.startswith(head[: -len("weight")])]
    assert untouched and all(
        np.array_equal(original["state_dict"][k].numpy(), swapped["state_dict"][k].numpy()) for k in untouched
    )
    with pytest.raises(ValueError, match="no_such"):
        confused_model(tmp_path / "d.pt", swaps=[("wave", "no_such")])


def test_ratios_and_the_paper_table() -> None:
    assert ratio(2.0, 4.0) == pytest.approx(0.5)
    assert ratio(None, 4.0) is None and ratio(1.0, 0.0) is None
    assert cosmo_ratios({"cosmo": 3.0, "deepsense": 6.0, "attnsense": None}) == {
        "cosmo/deepsense": 0.5,
        "cosmo/attnsense": None,
    }
    paper = paper_ratios()
    assert rate_key(0.01) == "1%" and set(paper["time_min"]) == {"1%", "2%"}
    # cosmo-method.md section 10: stage 2 takes about 0.67x DeepSense's time and 0.41x AttnSense's.
    for rate in ("1%", "2%"):
        assert paper["time_min"][rate]["cosmo/deepsense"] == pytest.approx(0.67, abs=0.01)
        assert paper["time_min"][rate]["cosmo/attnsense"] == pytest.approx(0.41, abs=0.01)
    assert PAPER_TABLE3["energy_kj"]["2%"]["attnsense"] == 98.58


def test_attach_energy_takes_the_median_over_repeats_and_fills_the_comparison() -> None:
    def run(method: str, wall_s: float, train_s: float, windows):
        return {
            "rate": "1%",
            "method": method,
            "wall_s": wall_s,
            "train_s": train_s,
            "repeats": [{"window_ns": w} for w in windows],
        }

    section = {
        "runs": [
            run("cosmo", 1.0, 0.8, [[0, 1], [0, 3], [0, 2]]),  # a whole round and its training step
            run("deepsense", 2.0, 2.0, [[0, 4]]),
            run("attnsense", 4.0, 4.0, [[0, 8]]),
        ]
    }
    attach_energy(section, lambda w: {"available": True, "gross_j": 10.0 * w[1], "net_j": float(w[1])})
    assert section["runs"][0]["energy"] == {"available": True, "gross_j": 20.0, "net_j": 2.0}
    row = section["comparison"]["1%"]
    assert row["ratios_time"] == {"cosmo/deepsense": 0.5, "cosmo/attnsense": 0.25}
    assert row["ratios_train_time"] == {
        "cosmo/deepsense": pytest.approx(0.4),
        "cosmo/attnsense": pytest.approx(0.2),
    }
    assert row["ratios_energy"] == {"cosmo/deepsense": 0.5, "cosmo/attnsense": 0.25}
    assert row["paper_ratios_time"]["cosmo/deepsense"] == pytest.approx(25.93 / 38.38)
    attach_energy(section, lambda w: {"available": False, "reason": "no meter here"})
    assert section["runs"][1]["energy"] == {"available": False, "reason": "no meter here"}
    assert comparison(section["runs"])["1%"]["ratios_energy"]["cosmo/attnsense"] is None


def test_run_energy_integrates_and_subtracts_idle(tmp_path) -> None:
    write_tx2(tmp_path)
    meter = probe_meter("jetson_ina3221", MeterOptions(sysfs_root=str(tmp_path)))
    t_s = np.linspace(0.0, 10.0, 101)
    trace = Trace("jetson_ina3221", "power_w", t_s, {"VDD_IN": 2.0 + 0.1 * t_s}, 0.1, "VDD_IN")
    idle = idle_power_w(trace, 0.0, 2.0)  # mean 2.1 W
    energy = _run_energy(trace, meter, idle, [4 * 10**9, 6 * 10**9])
    meter.close()
    assert energy["gross_j"] == pytest.approx(5.0)  # integral of 2 + 0.1 t over [4, 6]
    assert energy["net_j"] == pytest.approx(5.0 - 2.1 * 2.0)
    none = _run_energy(None, probe_meter("none"), {}, [0, 1])
    assert none["available"] is False and none["reason"]
