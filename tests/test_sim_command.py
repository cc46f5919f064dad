"""``cosmo-edge simulate``: prints the device paths, writes the ground truth, cleans up."""

import argparse
import json
import os
import subprocess
import sys

from cosmo_edge.commands import simulate


def run_cli(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cosmo_edge", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_simulate_prints_paths_and_writes_ground_truth(tmp_path) -> None:
    out = run_cli("--script", "wave:0.5,clap:0.5", "--speed", "5", "--no-depth", "--out-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if not line.startswith("{"))
    assert lines["imu"] == str(tmp_path / "imu") and lines["radar_data"] == str(tmp_path / "radar_data")
    info = json.loads(out.stdout.splitlines()[-1])
    assert info == {"duration_s": 1.0, "speed": 5.0}
    truth = [json.loads(line) for line in open(lines["ground_truth"], encoding="utf-8")]
    assert [row["activity"] for row in truth] == ["wave", "clap"]
    assert not os.path.lexists(tmp_path / "imu")  # the pty links are removed at the end


def test_replay_without_data_root_is_a_clear_error(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("COSMO_DATA", raising=False)
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(["--replay-trials", "a3_s1_t1", "--out-dir", str(tmp_path)])
    assert simulate.run(args) == 2
    assert "--data-root or COSMO_DATA" in capsys.readouterr().err
