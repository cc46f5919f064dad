"""The built-in simulator inside the daemon: devices that the REAL drivers open like hardware.

With a ``simulator:`` section in the config, the daemon starts ``drivers.sim.Simulator`` in its own
process (pyrealsense2's software device cannot cross processes). Sensors name simulated devices as
``sim:<device>`` (``sim:imu``, ``sim:radar_cli``, ``sim:radar_data``, ``sim:depth``); ``driver_kwargs``
turns those into the simulator's pty paths and its software camera, so the IMU and radar bytes go
through the serial drivers and the depth frames through the RealSense driver.

The simulated devices are set up to match the sensor entries that use them (IMU protocol, full
scales and rate; depth size and rate), since the config describes the devices. The ground truth
(the scripted activity timeline on the host monotonic clock) is copied to
``simulator.ground_truth_file`` when that is set.
"""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from cosmo_edge.config import SIM_PREFIX, DaemonConfig, ImuSerialSensor, RealSenseDepthSensor

logger = logging.getLogger(__name__)


def sim_devices(sensor: Any) -> List[str]:
    """The simulated devices a sensor entry names (``imu``, ``radar_cli``, ``radar_data``, ``depth``)."""
    values = sensor.driver_kwargs().values()
    return [v[len(SIM_PREFIX) :] for v in values if isinstance(v, str) and v.startswith(SIM_PREFIX)]


def sim_config(
    config: DaemonConfig, out_dir: str, replay_root: Optional[str] = None, replay_trials: Sequence[str] = ()
) -> Any:
    """A ``drivers.sim.SimConfig`` with the devices the sensors use, matched to their settings.

    With ``replay_trials`` (and ``replay_root``, the UTD-MHAD folder) the simulator replays those
    recorded trials instead of playing the script.
    """
    from drivers.sim import SimConfig

    section = config.simulator
    if section is None:
        raise ValueError("the config has no simulator section")
    cfg = SimConfig(script=section.script, speed=section.speed, seed=section.seed, out_dir=out_dir)
    if replay_trials:
        if not replay_root:
            raise ValueError("replaying UTD-MHAD trials needs the dataset folder")
        cfg.replay_root, cfg.replay_trials = str(replay_root), list(replay_trials)
    used = {device for sensor in config.sensors for device in sim_devices(sensor)}
    cfg.imu.enabled = "imu" in used
    cfg.radar.enabled = bool(used & {"radar_cli", "radar_data"})
    cfg.depth.enabled = "depth" in used
    for sensor in config.sensors:
        if isinstance(sensor, ImuSerialSensor) and "imu" in sim_devices(sensor):
            cfg.imu.protocol = sensor.protocol
            cfg.imu.accel_fs_g, cfg.imu.gyro_fs_dps = sensor.accel_fs_g, sensor.gyro_fs_dps
            cfg.imu.rate_hz = sensor.nominal_rate_hz
            cfg.imu.witmotion_time = sensor.witmotion_use_time
        if isinstance(sensor, RealSenseDepthSensor) and "depth" in sim_devices(sensor):
            cfg.depth.width, cfg.depth.height, cfg.depth.fps = sensor.width, sensor.height, sensor.fps
    return cfg


class SimulatorRunner:
    """Starts and stops the in-process simulator and resolves ``sim:`` device names."""

    def __init__(
        self, config: DaemonConfig, replay_root: Optional[str] = None, replay_trials: Sequence[str] = ()
    ) -> None:
        from drivers.sim import Simulator

        self._tmp = tempfile.TemporaryDirectory(prefix="cosmo-edge-sim-")
        self.section = config.simulator
        self.sim = Simulator(sim_config(config, self._tmp.name, replay_root, replay_trials))
        self.ground_truth_path: Optional[Path] = None

    @property
    def speed(self) -> float:
        """Simulation seconds per host second."""
        return float(self.sim.config.speed)

    @property
    def duration_s(self) -> float:
        """Host seconds the script lasts."""
        return self.sim.duration_s / self.speed

    def start(self) -> None:
        """Create the devices, start the emitters and copy the ground truth where the config wants it."""
        self.sim.start()
        self.ground_truth_path = Path(self.sim.ground_truth_path)
        target = self.section.ground_truth_file if self.section is not None else None
        if target is not None:
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.sim.ground_truth_path, target)
            self.ground_truth_path = target
            logger.info("simulator ground truth: %s", target)

    def finished(self) -> bool:
        """True once every simulated device has played the whole script."""
        return self.sim.wait(timeout_s=0.0)

    def driver_kwargs(self, sensor: Any) -> Dict[str, Any]:
        """The sensor's driver keyword arguments with ``sim:`` names replaced by the simulated devices."""
        kwargs = sensor.driver_kwargs()
        paths = self.sim.device_paths
        for key, value in list(kwargs.items()):
            if not (isinstance(value, str) and value.startswith(SIM_PREFIX)):
                continue
            device = value[len(SIM_PREFIX) :]
            if device == "depth":  # the software camera is handed over as a device object
                del kwargs[key]
                kwargs["device"] = self.sim.realsense_device
            else:
                kwargs[key] = paths[device]
        return kwargs

    def counters(self) -> Dict[str, int]:
        """Samples sent and bytes dropped per simulated device."""
        return self.sim.counters()

    def stop(self) -> None:
        """Stop the emitters, remove the devices and the temporary folder."""
        try:
            self.sim.stop()
        finally:
            self._tmp.cleanup()
