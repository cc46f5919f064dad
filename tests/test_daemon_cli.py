"""``cosmo-edge run`` / ``subscribe`` / ``train-bundled`` on the command line: registration and exit codes."""

import json

import pytest
import yaml

from cosmo_edge.bundled import SIM_CONFIG, SIM_MODEL, SIM_MODEL_CARD
from cosmo_edge.cli import build_parser, main


def test_commands_are_registered():
    parser = build_parser()
    args = parser.parse_args(["run", "--sim", "--duration-s", "30", "--show"])
    assert args.sim and args.show and args.duration_s == 30.0
    assert parser.parse_args(["subscribe", "--truth", "gt.jsonl"]).truth.name == "gt.jsonl"
    assert parser.parse_args(["train-bundled", "--sessions", "3"]).sessions == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["run"])  # --config or --sim is required


def test_invalid_config_exits_2_with_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sensors: []\nmodel:\n  path: x.pt\n  bogus: 1\n", encoding="utf-8")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:4: model.bogus" in err


def test_missing_model_exits_1_before_opening_sensors(tmp_path, capsys):
    config = yaml.safe_load(SIM_CONFIG.read_text(encoding="utf-8"))
    config["model"]["path"] = str(tmp_path / "absent.pt")
    config["state_dir"] = str(tmp_path / "state")
    config["simulator"]["ground_truth_file"] = None
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["--log-level", "ERROR", "run", "--config", str(path)]) == 1
    assert "start-up failed" in capsys.readouterr().err


def test_replay_needs_a_data_root(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("COSMO_DATA", raising=False)
    assert main(["run", "--sim", "--replay-trials", "a1_s1_t1"]) == 2
    assert "--data-root" in capsys.readouterr().err


def test_bundled_files_are_small_and_described():
    assert SIM_MODEL.stat().st_size < 5 * 2**20
    card = json.loads(SIM_MODEL_CARD.read_text(encoding="utf-8"))
    assert card["modalities"] == ["imu", "depth", "radar"] and card["test_accuracy"] >= 0.9
    assert main(["check-config", str(SIM_CONFIG)]) == 0
