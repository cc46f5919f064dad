"""Emitter threads: one per simulated device, each sampling the motion on its own clock.

Every emitter computes what its device measures at the device's sample instants, encodes it in
the device's wire format and hands it over at the simulated arrival time (``clock.ClockModel``):
IMU bytes into a pty, radar packets into the data pty while the fake radar is streaming, depth
frames into the software RealSense device.
"""

import logging
import threading
import time
from typing import Callable, List, Optional

import numpy as np

from drivers.radar_ti_cli import BITS_PER_BYTE
from drivers.radar_ti_parser import build_packet
from drivers.sim.clock import ClockModel, Timeline, arrival_times_ns
from drivers.sim.depth_render import DepthRenderer
from drivers.sim.imu_encoding import ImuEncoder
from drivers.sim.motion import MotionSource
from drivers.sim.pty_device import PtyDevice
from drivers.sim.radar_synth import radar_points
from drivers.sim.realsense_camera import SoftwareDepthCamera
from drivers.sim.ti_radar_device import FakeTiRadar

logger = logging.getLogger(__name__)

BATCH_S = 0.25
ACC_NOISE_G = 0.01
GYRO_NOISE_DPS = 0.3
NOISE_SCALE = np.array([ACC_NOISE_G] * 3 + [GYRO_NOISE_DPS] * 3)
RADAR_BAUD = 921600


class Emitter(threading.Thread):
    """Base: pacing against the host clock, a seeded RNG and a ``finished`` flag."""

    def __init__(
        self,
        name: str,
        timeline: Timeline,
        clock: ClockModel,
        duration_s: float,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.timeline, self.clock, self.duration_s = timeline, clock, duration_s
        self._stop_event = stop
        self.rng = np.random.default_rng(seed)
        self.finished = threading.Event()
        self.samples_sent = 0
        self._last_arrival_ns = 0

    def _wait_until(self, host_ns: int) -> bool:
        """Sleep until ``host_ns``; False when the simulator is stopping."""
        delay_s = (host_ns - time.monotonic_ns()) * 1e-9
        if delay_s > 0:
            return not self._stop_event.wait(delay_s)
        return not self._stop_event.is_set()

    def _arrivals(self, emit_ns: np.ndarray, extra_ns: Optional[np.ndarray] = None) -> np.ndarray:
        if extra_ns is not None:
            emit_ns = emit_ns + extra_ns
        arrivals = arrival_times_ns(emit_ns, self.clock, self.rng, self._last_arrival_ns)
        self._last_arrival_ns = int(arrivals[-1]) if len(arrivals) else self._last_arrival_ns
        return arrivals

    def _deliver(self, arrivals_ns: np.ndarray, payloads: List[bytes], send: Callable[[bytes], None]) -> bool:
        """Send payloads at their arrival times, joining those already due; False when stopping."""
        i = 0
        while i < len(payloads):
            if not self._wait_until(int(arrivals_ns[i])):
                return False
            now_ns = time.monotonic_ns()
            j = i + 1
            while j < len(payloads) and arrivals_ns[j] <= now_ns:
                j += 1
            send(b"".join(payloads[i:j]))
            self.samples_sent += j - i
            i = j
        return True

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.finished.set()

    def _run(self) -> None:
        raise NotImplementedError


class ImuEmitter(Emitter):
    """Samples the source's IMU at ``rate_hz`` device time and writes encoded bytes into a pty."""

    def __init__(
        self, pty: PtyDevice, source: MotionSource, encoder: ImuEncoder, rate_hz: float, **kwargs: object
    ) -> None:
        super().__init__("sim-imu", **kwargs)  # type: ignore[arg-type]
        self.pty, self.source, self.encoder, self.rate_hz = pty, source, encoder, float(rate_hz)

    def _run(self) -> None:
        self.pty.write(self.encoder.banner())
        per_batch = max(1, int(round(self.rate_hz * BATCH_S)))
        n = 0
        while not self._stop_event.is_set():
            index = np.arange(n, n + per_batch)
            device_s = self.clock.offset_s + index / self.rate_hz
            sim_s = self.clock.sim_time(device_s)
            keep = sim_s <= self.duration_s
            if not keep.any():
                return
            device_s, sim_s = device_s[keep], sim_s[keep]
            values = self.source.imu(sim_s)
            if self.source.synthetic:
                values = values + self.rng.normal(0.0, 1.0, values.shape) * NOISE_SCALE
            payloads = self.encoder.encode(values, device_s)
            arrivals = self._arrivals(self.timeline.host_ns(sim_s))
            if not self._deliver(arrivals, payloads, self.pty.write):
                return
            n += per_batch


class DepthEmitter(Emitter):
    """Renders (or replays) depth frames at ``fps`` and injects them into the software camera."""

    def __init__(
        self, camera: SoftwareDepthCamera, source: MotionSource, renderer: DepthRenderer, **kwargs: object
    ) -> None:
        super().__init__("sim-depth", **kwargs)  # type: ignore[arg-type]
        self.camera, self.source, self.renderer = camera, source, renderer

    def _frame_mm(self, sim_s: float) -> np.ndarray:
        frame = self.source.depth_mm(sim_s)
        if frame is None:
            return self.renderer.render(self.source.joints(np.array([sim_s]))[0])
        h, w = self.camera.height, self.camera.width
        if frame.shape != (h, w):  # nearest-neighbour resize of a recorded frame
            rows = (np.arange(h) * frame.shape[0]) // h
            cols = (np.arange(w) * frame.shape[1]) // w
            frame = frame[rows][:, cols]
        return frame

    def _run(self) -> None:
        n = 0
        units_per_mm = 0.001 / self.camera.depth_units_m
        while not self._stop_event.is_set():
            device_s = self.clock.offset_s + n / self.camera.fps
            sim_s = float(self.clock.sim_time(device_s))
            if sim_s > self.duration_s:
                return
            frame = self._frame_mm(sim_s)
            if units_per_mm != 1.0:
                frame = np.clip(np.rint(frame * units_per_mm), 0, 65535).astype(np.uint16)
            arrival = self._arrivals(self.timeline.host_ns(np.array([sim_s])))
            if not self._wait_until(int(arrival[0])):
                return
            self.camera.inject(frame, n + 1, int(round(device_s * 1e6)))
            self.samples_sent += 1
            n += 1


class RadarEmitter(Emitter):
    """Streams point-cloud packets into the data pty while the fake radar is started."""

    def __init__(
        self,
        data: PtyDevice,
        radar: FakeTiRadar,
        source: MotionSource,
        max_points: int = 64,
        **kwargs: object,
    ) -> None:
        super().__init__("sim-radar", **kwargs)  # type: ignore[arg-type]
        self.data, self.radar, self.source, self.max_points = data, radar, source, int(max_points)

    def _run(self) -> None:
        starts_seen = 0
        number, sim_start = 1, 0.0
        while not self._stop_event.is_set():
            period_s = self.radar.frame_period_s
            if self.timeline.sim_s(time.monotonic_ns()) > self.duration_s:
                return
            if not self.radar.streaming or period_s is None:
                self._stop_event.wait(0.01)
                continue
            if self.radar.starts != starts_seen:
                starts_seen = self.radar.starts
                number, sim_start = 1, self.timeline.sim_s(time.monotonic_ns())
            sim_s = sim_start + (number - 1) * period_s / self.clock.rate
            if sim_s > self.duration_s:
                return
            joints = self.source.joints(np.array([sim_s, sim_s + 0.02]))
            points, snr, noise = radar_points(joints[0], joints[1], 0.02, self.rng, self.max_points)
            packet = build_packet(number, points, snr, noise, stats=(2500, 900, 40000, 20, 35, 12))
            wire_ns = np.array([len(packet) * BITS_PER_BYTE * 10**9 // RADAR_BAUD])
            arrival = self._arrivals(self.timeline.host_ns(np.array([sim_s])), wire_ns)
            while self.radar.streaming and not self._stop_event.is_set():
                remaining_s = (int(arrival[0]) - time.monotonic_ns()) * 1e-9
                if remaining_s <= 0:
                    break
                self._stop_event.wait(min(remaining_s, 0.05))
            if not self.radar.streaming or self._stop_event.is_set():
                continue
            self.data.write(packet)
            self.samples_sent += 1
            number += 1
