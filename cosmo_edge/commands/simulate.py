"""``cosmo-edge simulate``: run the sensor simulator and print where its devices are.

The serial devices are ptys behind stable links (open them like ``/dev/ttyUSB0``); the depth
camera is a pyrealsense2 software device, reachable only from this process (the Python API,
``drivers.sim.Simulator``, hands it to the driver). The ground truth goes to
``<out-dir>/ground_truth.jsonl``.
"""

import argparse
import json
import logging
import os
import signal
import sys
import time

NAME = "simulate"
HELP = "simulate a person seen by an IMU, a depth camera and a radar over the real wire formats"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Script, speed, device options and replay mode."""
    from drivers.sim.script import DEFAULT_SCRIPT

    parser.add_argument("--script", default=DEFAULT_SCRIPT, help="'activity:seconds,...' or a script file")
    parser.add_argument("--repeat", type=int, default=1, help="times the script is played")
    parser.add_argument("--speed", type=float, default=1.0, help="simulation seconds per real second")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise, jitter and radar points")
    parser.add_argument(
        "--out-dir", help="folder for the device links and ground truth (default: a temp dir)"
    )
    parser.add_argument(
        "--imu-protocol",
        default="timestamped_text",
        choices=["timestamped_text", "mpu6050_text", "witmotion"],
        help="IMU wire format",
    )
    parser.add_argument(
        "--imu-rate-hz",
        type=float,
        help="IMU sample rate on its device clock (default 100; 50 when replaying)",
    )
    parser.add_argument("--depth-size", default="640x480", help="depth frame WIDTHxHEIGHT in pixels")
    parser.add_argument("--depth-fps", type=int, default=30, help="depth frames per second")
    parser.add_argument("--background", default="none", choices=["none", "room"], help="depth background")
    parser.add_argument("--no-imu", action="store_true", help="do not simulate the IMU")
    parser.add_argument("--no-depth", action="store_true", help="do not simulate the depth camera")
    parser.add_argument("--no-radar", action="store_true", help="do not simulate the radar")
    parser.add_argument("--replay-trials", help="replay UTD-MHAD trials instead, e.g. 'a3_s1_t1,a23_s2_t1'")
    parser.add_argument("--data-root", help="UTD-MHAD folder for --replay-trials (default: $COSMO_DATA)")


def _config(args: argparse.Namespace):  # -> SimConfig (imported lazily)
    from drivers.sim import SimConfig

    cfg = SimConfig(
        script=args.script, repeat=args.repeat, speed=args.speed, seed=args.seed, out_dir=args.out_dir
    )
    cfg.imu.enabled, cfg.imu.protocol = not args.no_imu, args.imu_protocol
    cfg.imu.rate_hz = args.imu_rate_hz or (50.0 if args.replay_trials else 100.0)
    width, _, height = args.depth_size.lower().partition("x")
    cfg.depth.enabled, cfg.depth.width, cfg.depth.height = not args.no_depth, int(width), int(height)
    cfg.depth.fps, cfg.depth.background = args.depth_fps, args.background
    cfg.radar.enabled = not args.no_radar
    if args.replay_trials:
        root = args.data_root or os.environ.get("COSMO_DATA")
        if not root:
            raise ValueError("--replay-trials needs --data-root or COSMO_DATA (the UTD-MHAD folder)")
        cfg.replay_root = root
        cfg.replay_trials = [name.strip() for name in args.replay_trials.split(",") if name.strip()]
        if not args.no_depth and args.depth_size == "640x480":
            cfg.depth.width, cfg.depth.height = 320, 240  # UTD-MHAD's depth size
    return cfg


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so that the devices are removed on the way out."""
    raise SystemExit(0)


def run(args: argparse.Namespace) -> int:
    """Start the simulator, print the device paths, run until the script ends or Ctrl-C."""
    from drivers.sim import Simulator

    try:
        sim = Simulator(_config(args))
    except (ValueError, OSError) as exc:
        print(f"cosmo-edge simulate: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sim.start()
    try:
        for name, path in sim.device_paths.items():
            shown = path if isinstance(path, str) else "pyrealsense2 software_device (in this process only)"
            print(f"{name:13s} {shown}")
        print(f"{'ground_truth':13s} {sim.ground_truth_path}")
        print(json.dumps({"duration_s": sim.duration_s, "speed": args.speed}))
        sys.stdout.flush()
        while not sim.wait(timeout_s=0.5):
            time.sleep(0)
    except KeyboardInterrupt:
        logger.info("interrupted")
    finally:
        sim.stop()
    return 0
