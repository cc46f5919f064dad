"""The simulator: a scripted (or replayed) person seen by an IMU, a depth camera and a radar.

``Simulator(config).start()`` creates one pty pair per serial device (published as symlinks in
``out_dir``), a software RealSense device, writes the ground-truth script and starts one thread
per device. Drivers then open ``device_paths[...]`` / ``realsense_device`` exactly as they open
hardware; ``driver_configs()`` returns ready ``create_driver`` keyword sets. ``unplug`` / ``plug``
simulate a USB disconnect. ``stop()`` ends everything; ``wait()`` blocks until the script is over.
"""

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from drivers.sim import body
from drivers.sim.clock import ClockModel, Timeline
from drivers.sim.depth_render import DepthRenderer
from drivers.sim.emitters import DepthEmitter, Emitter, ImuEmitter, RadarEmitter
from drivers.sim.imu_encoding import ImuEncoder
from drivers.sim.motion import MotionSource, ScriptedMotion
from drivers.sim.pty_device import PtyDevice
from drivers.sim.script import DEFAULT_SCRIPT, build_segments, parse_script, write_ground_truth
from drivers.sim.ti_radar_device import FakeTiRadar

logger = logging.getLogger(__name__)


@dataclass
class ImuSimConfig:
    """Simulated IMU: wire protocol, device rate (Hz), full scales, clock."""

    enabled: bool = True
    protocol: str = "timestamped_text"
    rate_hz: float = 100.0
    accel_fs_g: int = 16
    gyro_fs_dps: int = 2000
    witmotion_time: bool = True
    clock: ClockModel = field(default_factory=lambda: ClockModel(offset_s=4290.0, drift_ppm=40.0))


@dataclass
class DepthSimConfig:
    """Simulated depth camera: z16 size and rate, background, clock."""

    enabled: bool = True
    width: int = 640
    height: int = 480
    fps: int = 30
    background: str = "none"
    cache_frames: int = 64
    clock: ClockModel = field(
        default_factory=lambda: ClockModel(offset_s=1000.0, drift_ppm=-25.0, jitter_s=0.003)
    )


@dataclass
class RadarSimConfig:
    """Simulated TI radar: point cap and clock (the frame period comes from the ``.cfg`` sent)."""

    enabled: bool = True
    max_points: int = 64
    clock: ClockModel = field(default_factory=lambda: ClockModel(drift_ppm=15.0, jitter_s=0.002))


@dataclass
class SimConfig:
    """Everything the simulator needs.

    Attributes:
        script: activity script (inline ``"walk:10,wave:8"`` or a file); ignored in replay mode.
        repeat: times the script is played.
        speed: simulation seconds per host second (1 = real time, 10 = ten times faster).
        seed: seed of every random stream (noise, jitter, radar points).
        out_dir: where the pty links and the ground truth go (a new temp dir when None).
        start_delay_s: host seconds between ``start()`` and simulation time 0 (drivers open meanwhile).
        replay_root, replay_trials: UTD-MHAD folder and trial names (``"a3_s1_t1"``) for replay mode.
    """

    script: str = DEFAULT_SCRIPT
    repeat: int = 1
    speed: float = 1.0
    seed: int = 0
    out_dir: Optional[str] = None
    start_delay_s: float = 0.5
    imu: ImuSimConfig = field(default_factory=ImuSimConfig)
    depth: DepthSimConfig = field(default_factory=DepthSimConfig)
    radar: RadarSimConfig = field(default_factory=RadarSimConfig)
    replay_root: Optional[str] = None
    replay_trials: List[str] = field(default_factory=list)


class Simulator:
    """Runs the simulated devices; see the module docstring."""

    def __init__(self, config: Optional[SimConfig] = None) -> None:
        self.config = config or SimConfig()
        if self.config.speed <= 0:
            raise ValueError("speed must be positive")
        self.source = self._make_source()
        self.out_dir = self.config.out_dir or tempfile.mkdtemp(prefix="cosmo-sim-")
        os.makedirs(self.out_dir, exist_ok=True)
        self.ground_truth_path = os.path.join(self.out_dir, "ground_truth.jsonl")
        self.ptys: Dict[str, PtyDevice] = {}
        self.radar: Optional[FakeTiRadar] = None
        self.camera: Optional[Any] = None
        self.timeline: Optional[Timeline] = None
        self._emitters: List[Emitter] = []
        self._stop = threading.Event()

    def _make_source(self) -> MotionSource:
        cfg = self.config
        if cfg.replay_trials:
            from drivers.sim.utd_replay import UtdReplay

            if not cfg.replay_root:
                raise ValueError("replay mode needs replay_root (the UTD-MHAD folder)")
            return UtdReplay(cfg.replay_root, cfg.replay_trials, with_depth=cfg.depth.enabled)
        segments = build_segments(parse_script(cfg.script), body.ACTIVITIES, cfg.repeat)
        return ScriptedMotion(segments)

    @property
    def duration_s(self) -> float:
        """Simulation seconds the script lasts."""
        return self.source.duration_s

    @property
    def device_paths(self) -> Dict[str, Any]:
        """Serial device links (``imu``, ``radar_cli``, ``radar_data``) and the ``depth`` device handle."""
        paths: Dict[str, Any] = {name: pty.link_path for name, pty in self.ptys.items()}
        if self.camera is not None:
            paths["depth"] = self.camera.handle
        return paths

    @property
    def realsense_device(self) -> Optional[Any]:
        """The pyrealsense2 software device (``None`` when depth is off)."""
        return self.camera.handle if self.camera is not None else None

    def driver_configs(self) -> Dict[str, Dict[str, Any]]:
        """``create_driver`` type key and keyword arguments for every simulated stream."""
        cfg = self.config
        configs: Dict[str, Dict[str, Any]] = {}
        if "imu" in self.ptys:
            imu: Dict[str, Any] = {"type": "imu_serial", "port": self.ptys["imu"].link_path, "baud": 115200}
            imu["protocol"] = cfg.imu.protocol
            if cfg.imu.protocol == "witmotion":
                imu["witmotion_use_time"] = cfg.imu.witmotion_time
            else:
                imu.update(accel_fs_g=cfg.imu.accel_fs_g, gyro_fs_dps=cfg.imu.gyro_fs_dps)
                imu["nominal_rate_hz"] = cfg.imu.rate_hz
            configs["imu"] = imu
        if "radar_cli" in self.ptys:
            configs["radar"] = {
                "type": "radar_ti",
                "cli_port": self.ptys["radar_cli"].link_path,
                "data_port": self.ptys["radar_data"].link_path,
            }
        if self.camera is not None:
            configs["depth"] = {
                "type": "realsense_depth",
                "device": self.camera.handle,
                "width": cfg.depth.width,
                "height": cfg.depth.height,
                "fps": cfg.depth.fps,
            }
        return configs

    def start(self) -> "Simulator":
        """Create the devices, write the ground truth and start the emitters."""
        cfg = self.config
        t0_ns = time.monotonic_ns() + int(cfg.start_delay_s * 1e9)
        self.timeline = Timeline(t0_ns, cfg.speed)
        common = {"timeline": self.timeline, "duration_s": self.duration_s, "stop": self._stop}
        if cfg.imu.enabled:
            pty = self._pty("imu")
            encoder = ImuEncoder(
                cfg.imu.protocol, cfg.imu.accel_fs_g, cfg.imu.gyro_fs_dps, cfg.imu.witmotion_time
            )
            self._emitters.append(
                ImuEmitter(
                    pty, self.source, encoder, cfg.imu.rate_hz, clock=cfg.imu.clock, seed=cfg.seed, **common
                )
            )
        if cfg.radar.enabled:
            self.radar = FakeTiRadar(self._pty("radar_cli"))
            self.radar.start()
            self._emitters.append(
                RadarEmitter(
                    self._pty("radar_data"),
                    self.radar,
                    self.source,
                    cfg.radar.max_points,
                    clock=cfg.radar.clock,
                    seed=cfg.seed + 1,
                    **common,
                )
            )
        if cfg.depth.enabled:
            from drivers.sim.realsense_camera import SoftwareDepthCamera

            self.camera = SoftwareDepthCamera(cfg.depth.width, cfg.depth.height, cfg.depth.fps)
            renderer = DepthRenderer(
                cfg.depth.width, cfg.depth.height, cfg.depth.background, cfg.depth.cache_frames
            )
            self._emitters.append(
                DepthEmitter(
                    self.camera, self.source, renderer, clock=cfg.depth.clock, seed=cfg.seed + 2, **common
                )
            )
        write_ground_truth(self.ground_truth_path, self.source.segments, t0_ns, cfg.speed)
        for emitter in self._emitters:
            emitter.start()
        logger.info(
            "simulator started: %.1f s of activity at %gx, devices in %s",
            self.duration_s,
            cfg.speed,
            self.out_dir,
        )
        return self

    def _pty(self, name: str) -> PtyDevice:
        pty = PtyDevice(os.path.join(self.out_dir, name))
        pty.plug()
        self.ptys[name] = pty
        return pty

    def unplug(self, device: str) -> None:
        """Simulate a USB disconnect of ``"imu"`` or ``"radar"`` (both radar ports; it loses its config)."""
        for name in self._pty_names(device):
            self.ptys[name].unplug()
        if device == "radar" and self.radar is not None:
            self.radar.power_cycle()

    def plug(self, device: str) -> None:
        """Bring a device back under the same paths (an IMU sketch prints its banner again)."""
        for name in self._pty_names(device):
            self.ptys[name].plug()
        if device == "imu" and self.config.imu.protocol == "mpu6050_text":
            self.ptys["imu"].write(ImuEncoder("mpu6050_text").banner())

    def _pty_names(self, device: str) -> List[str]:
        names = {"imu": ["imu"], "radar": ["radar_cli", "radar_data"]}.get(device)
        if names is None or any(name not in self.ptys for name in names):
            raise ValueError(f"no simulated serial device {device!r}")
        return names

    def counters(self) -> Dict[str, int]:
        """Samples sent per emitter and bytes dropped per pty (nobody reading)."""
        counts = {f"{e.name}_sent": e.samples_sent for e in self._emitters}
        counts.update({f"{name}_bytes_dropped": pty.bytes_dropped for name, pty in self.ptys.items()})
        return counts

    def wait(self, timeout_s: Optional[float] = None) -> bool:
        """Block until every emitter has finished the script; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for emitter in self._emitters:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not emitter.finished.wait(remaining):
                return False
        return True

    def stop(self) -> None:
        """Stop the emitters, the fake radar CLI and remove the ptys."""
        self._stop.set()
        for emitter in self._emitters:
            emitter.join(timeout=2.0)
        if self.radar is not None:
            self.radar.stop()
        for pty in self.ptys.values():
            pty.close()
        logger.info("simulator stopped: %s", self.counters())

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
