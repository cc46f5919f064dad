"""Training windows from the simulator: the synthetic person seen by IMU, depth camera and radar.

Each session is a random order of the simulator's activities (``drivers.sim.body.ACTIVITIES``) with
random durations, played by ``drivers.sim.motion.ScriptedMotion`` exactly as the live simulator plays
it (same blending between activities). Its streams are generated at the sensors' rates with the
simulator's own models: IMU values plus the emitters' sensor noise, depth frames from the same
``DepthRenderer`` (uint16 mm, then metres as the RealSense driver delivers them), radar point clouds from
``radar_points``. Samples then go through the daemon's path - ``StreamChannel.push`` into rings and
``WindowCutter.cut`` (via ``cosmo_edge.daemon.wiring``) - so every training window is prepared by the
very code that prepares live windows. Only the transport is skipped (wire encoding, clock mapping),
which changes values below the sensor noise and stamps by well under a frame.

A window is labelled with the activity that covers most of it and kept when that share is at least
``min_purity`` (transitions blur the rest).
"""

import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from cosmo_edge.daemon.wiring import WindowTiming, make_cutter
from cosmo_edge.datasets import MultimodalDataset
from cosmo_edge.ring import Ring
from cosmo_edge.windows import StreamChannel, ring_layout
from drivers.sample import Sample
from drivers.sim import body
from drivers.sim.depth_render import DepthRenderer
from drivers.sim.emitters import NOISE_SCALE
from drivers.sim.motion import ScriptedMotion
from drivers.sim.radar_synth import radar_points
from drivers.sim.script import build_segments

logger = logging.getLogger(__name__)

BASE_NS = 10**9  # host stamp of simulation time 0 (any positive value)
RADAR_DT_S = 0.02  # the emitter's pose step for radial velocities
RADAR_MAX_POINTS = 64  # the simulator's default cap


@dataclass
class SimDataConfig:
    """What to simulate and how windows are cut (sensor seconds and rates)."""

    modalities: Tuple[str, ...] = ("imu", "depth", "radar")
    sessions: int = 6  # one pseudo-subject each
    rounds: int = 1  # times every activity appears per session
    min_activity_s: float = 7.0
    max_activity_s: float = 13.0
    window_s: float = 2.0
    hop_s: float = 0.5
    min_purity: float = 0.75
    imu_rate_hz: float = 100.0
    depth_fps: float = 30.0
    depth_width: int = 640
    depth_height: int = 480
    radar_rate_hz: float = 20.0
    seed: int = 0


def session_script(rng: np.random.Generator, config: SimDataConfig) -> List[Tuple[str, float]]:
    """A random order of every activity, ``rounds`` times, with random durations."""
    steps: List[Tuple[str, float]] = []
    for _ in range(config.rounds):
        for index in rng.permutation(len(body.ACTIVITIES)):
            steps.append(
                (body.ACTIVITIES[index], float(rng.uniform(config.min_activity_s, config.max_activity_s)))
            )
    return steps


def _stamps(t_s: np.ndarray) -> np.ndarray:
    return BASE_NS + np.rint(t_s * 1e9).astype(np.int64)


def fill_channels(
    source: ScriptedMotion, config: SimDataConfig, rng: np.random.Generator
) -> Tuple[Dict[str, StreamChannel], Dict[str, float]]:
    """Generate every stream of one session into its own ring (stamps = true event times)."""
    duration_s = source.duration_s
    rates = {"imu": config.imu_rate_hz, "depth": config.depth_fps, "radar": config.radar_rate_hz}
    channels: Dict[str, StreamChannel] = {}
    for m in config.modalities:
        ring = Ring.for_duration(duration_s + 2.0, rates[m], ring_layout(m), name=m)
        channels[m] = StreamChannel(m, ring, None)
    for m, channel in channels.items():
        t_s = np.arange(0.0, duration_s, 1.0 / rates[m]) + rng.uniform(0.0, 1.0 / rates[m])
        stamps = _stamps(t_s)
        if m == "imu":
            values = source.imu(t_s) + rng.normal(0.0, 1.0, (len(t_s), 6)) * NOISE_SCALE
            for k, row in enumerate(values.astype(np.float32)):
                channel.push(Sample(m, None, int(stamps[k]), row, k))
        elif m == "depth":
            renderer = DepthRenderer(config.depth_width, config.depth_height)
            for k, joints in enumerate(source.joints(t_s)):
                metres = renderer.render(joints).astype(np.float32) * np.float32(0.001)
                channel.push(Sample(m, None, int(stamps[k]), metres, k))
        elif m == "radar":
            now, later = source.joints(t_s), source.joints(t_s + RADAR_DT_S)
            for k in range(len(t_s)):
                points, _, _ = radar_points(now[k], later[k], RADAR_DT_S, rng, RADAR_MAX_POINTS)
                channel.push(Sample(m, None, int(stamps[k]), points, k))
        else:
            raise ValueError(f"the simulator has no {m!r} stream")
    return channels, rates


def session_windows(
    steps: Sequence[Tuple[str, float]], config: SimDataConfig, seed: int
) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Windows of one session: prepared inputs (modality -> (N, ...)), labels (N,), purity (N,)."""
    rng = np.random.default_rng(seed)
    source = ScriptedMotion(build_segments(steps, body.ACTIVITIES))
    channels, rates = fill_channels(source, config, rng)
    timing = WindowTiming(config.window_s, config.hop_s, 0.0, 5.0, 1.0)
    cutter = make_cutter(config.modalities, channels, rates, timing)
    starts = np.array([s.start_s for s in source.segments])
    ends = np.array([s.end_s for s in source.segments])
    inputs: Dict[str, List[np.ndarray]] = {m: [] for m in config.modalities}
    labels, purity = [], []
    for t_end in np.arange(config.window_s, source.duration_s, config.hop_s):
        t_start = t_end - config.window_s
        overlap = np.clip(np.minimum(ends, t_end) - np.maximum(starts, t_start), 0.0, None)
        best = int(np.argmax(overlap))
        share = float(overlap[best] / config.window_s)
        if share < config.min_purity:
            continue
        window = cutter.cut(int(_stamps(np.array([t_end]))[0]))
        if not all(window.present.values()):
            logger.debug("window at %.2f s lacks %s", t_end, window.reasons)
            continue
        for m in config.modalities:
            inputs[m].append(window.inputs[m])
        labels.append(source.segments[best].label)
        purity.append(share)
    arrays = {m: np.stack(v).astype(np.float32) for m, v in inputs.items()}
    return arrays, np.array(labels, dtype=np.int64), np.array(purity)


def make_sim_dataset(config: SimDataConfig) -> MultimodalDataset:
    """``config.sessions`` sessions as one dataset; subject = session number (1-based)."""
    rng = np.random.default_rng(config.seed)
    parts: Dict[str, List[np.ndarray]] = {m: [] for m in config.modalities}
    labels, subjects, trial_ids, scripts = [], [], [], []
    for session in range(1, config.sessions + 1):
        steps = session_script(rng, config)
        scripts.append(",".join(f"{a}:{d:.2f}" for a, d in steps))
        inputs, y, _ = session_windows(steps, config, seed=int(rng.integers(2**31)))
        for m in config.modalities:
            parts[m].append(inputs[m])
        labels.append(y)
        subjects.append(np.full(len(y), session, dtype=np.int64))
        trial_ids.extend(f"sim_s{session}_w{k}" for k in range(len(y)))
        logger.info("session %d: %d windows (%s)", session, len(y), scripts[-1])
    return MultimodalDataset(
        inputs={m: np.concatenate(v) for m, v in parts.items()},
        labels=np.concatenate(labels),
        subjects=np.concatenate(subjects),
        trial_ids=trial_ids,
        label_names=list(body.ACTIVITIES),
        meta={"source": "simulator", "scripts": scripts},
    )
