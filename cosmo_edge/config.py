"""The daemon's configuration: one pydantic model tree, loaded from YAML with line-numbered errors.

Every model rejects unknown keys (``extra="forbid"``) and every field carries a description with its
unit. ``load_config(path)`` parses YAML with PyYAML's composer, so each node keeps its line, and builds
the data from the nodes itself (``cosmo_edge.config_yaml``): whatever the file holds, the only
exception is ``ConfigError``. A problem is reported as ``ConfigIssue(line, path, message)`` with the
key path (``sensors[0].baud``) and the line of that key in the file (or of its nearest parent when
the key is missing). Duplicate keys, which PyYAML would silently collapse, are errors too.

Sensors are a list; each entry's ``type`` selects the driver (``drivers.registry`` key) and the fields
beside it are that driver's settings, named as the driver's keyword arguments (``driver_kwargs()``).
``sim:<device>`` in a port field refers to a device of the built-in simulator (``simulator`` section).
Publishing binds to loopback unless CURVE keys are configured (docs/platform.md section 5).
"""

import ipaddress
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import Annotated, Literal

from cosmo_edge.config_yaml import ConfigError, ConfigIssue, build, compose, locate
from cosmo_edge.config_yaml import format_issue as format_issue  # public here too (check-config)

logger = logging.getLogger(__name__)

SIM_DEVICES = ("imu", "radar_cli", "radar_data", "depth")
SIM_PREFIX = "sim:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulatorConfig(_Strict):
    """The built-in simulator (drivers/sim): a synthetic person on pseudo-terminals and a software camera."""

    script: str = Field(
        "stand_still:6,walk:10,wave:8,clap:8,squat:9,sit:8",
        description="activity script: inline 'activity:seconds,...' or a file path (seconds)",
    )
    speed: float = Field(1.0, gt=0, le=100, description="simulation speed factor (1 = real time; unitless)")
    seed: int = Field(0, description="random seed of the simulated motion and clocks (unitless)")
    ground_truth_file: Optional[Path] = Field(
        None, description="where to write the scripted activity timeline (JSON lines); none: not written"
    )


class _Sensor(_Strict):
    latency_s: float = Field(
        0.0, ge=0, le=1.0, description="constant transport lag subtracted from arrivals (s)"
    )

    def driver_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments for ``drivers.registry.create_driver(self.type, ...)``."""
        return self.model_dump(exclude={"type", "modality", "latency_s"}, exclude_none=True)


def _check_port(value: Optional[str]) -> Optional[str]:
    """A device path, or ``sim:<device>`` naming a simulated device that exists."""
    if value is not None and value.startswith(SIM_PREFIX) and value[len(SIM_PREFIX) :] not in SIM_DEVICES:
        known = ", ".join(SIM_PREFIX + d for d in SIM_DEVICES)
        raise ValueError(f"unknown simulated device {value!r}; known: {known}")
    return value


class ImuSerialSensor(_Sensor):
    """An IMU on a serial port (WitMotion binary frames or MPU-6050 style text lines)."""

    type: Literal["imu_serial"] = Field(description="driver type key")
    modality: Literal["imu"] = Field("imu", description="model input this sensor feeds")
    port: str = Field(description="serial device, e.g. /dev/serial/by-id/usb-...-if00-port0, or sim:imu")
    baud: int = Field(115200, gt=0, description="serial line rate (bit/s)")
    protocol: Literal["witmotion", "mpu6050_text", "timestamped_text"] = Field(
        "witmotion", description="wire protocol"
    )
    accel_fs_g: Literal[2, 4, 8, 16] = Field(2, description="accelerometer full scale of text protocols (g)")
    gyro_fs_dps: Literal[250, 500, 1000, 2000] = Field(
        250, description="gyroscope full scale of text protocols (deg/s)"
    )
    nominal_rate_hz: float = Field(100.0, gt=0, le=1000, description="expected sample rate (Hz)")
    witmotion_use_time: bool = Field(
        False, description="use the 0x50 chip-time frames as device time (WitMotion only)"
    )

    _port = field_validator("port")(_check_port)


class RadarTiSensor(_Sensor):
    """A TI mmWave radar running the out-of-box demo (CLI port + data port)."""

    type: Literal["radar_ti"] = Field(description="driver type key")
    modality: Literal["radar"] = Field("radar", description="model input this sensor feeds")
    data_port: str = Field(
        description="binary data port (921600 baud), e.g. /dev/serial/by-id/...-if01, or sim:radar_data"
    )
    cli_port: Optional[str] = Field(
        None,
        description="text CLI port (115200 baud), e.g. ...-if00, or sim:radar_cli; needed to configure",
    )
    cfg_path: Optional[Path] = Field(
        None, description="chirp .cfg file sent at start; none: the bundled IWR6843 profile"
    )
    configure: bool = Field(
        True, description="send the .cfg over the CLI port at start (false: the radar is already running)"
    )
    max_points: int = Field(150, gt=0, le=1000, description="points kept per frame by the driver (points)")

    _ports = field_validator("data_port", "cli_port")(_check_port)

    @model_validator(mode="after")
    def _cli_needed(self) -> "RadarTiSensor":
        if self.configure and not self.cli_port:
            raise ValueError("configure is true (the default) but cli_port is not set")
        return self


class RealSenseDepthSensor(_Sensor):
    """An Intel RealSense depth camera (z16 stream)."""

    type: Literal["realsense_depth"] = Field(description="driver type key")
    modality: Literal["depth"] = Field("depth", description="model input this sensor feeds")
    serial_number: Optional[str] = Field(
        None, description="camera serial number; none: the first camera; sim:depth for the simulator"
    )
    width: int = Field(640, gt=0, description="depth stream width (pixels)")
    height: int = Field(480, gt=0, description="depth stream height (pixels)")
    fps: Literal[6, 15, 30, 60, 90] = Field(30, description="depth stream rate (frames/s)")

    _serial = field_validator("serial_number")(_check_port)


Sensor = Annotated[Union[ImuSerialSensor, RadarTiSensor, RealSenseDepthSensor], Field(discriminator="type")]


class TimebaseSettings(_Strict):
    """Device-clock to host-clock estimation (docs/platform.md section 4.2); shared by every stream."""

    bucket_s: float = Field(1.0, gt=0, description="one envelope point per bucket of device time (s)")
    fit_window_s: float = Field(60.0, gt=0, description="span of envelope points in the drift fit (s)")
    min_points: int = Field(5, ge=2, description="envelope points needed before the drift is fitted (points)")
    max_drift_ppm: float = Field(
        2000.0, gt=0, description="clamp on the fitted drift (ppm; index-clocked streams use 50000)"
    )
    outlier_k: float = Field(
        3.0, gt=0, description="MAD multiple above the line beyond which a point is dropped (unitless)"
    )
    early_tol_s: float = Field(
        0.005, gt=0, description="an arrival this much earlier than the model counts as early (s)"
    )
    early_n: int = Field(
        5, ge=1, description="early arrivals in a row that mean the device clock jumped (samples)"
    )


class WindowSettings(_Strict):
    """How model inputs are cut from the streams."""

    window_s: float = Field(2.0, gt=0, le=30, description="window length (s)")
    hop_s: float = Field(0.5, gt=0, description="time between window ends (s)")
    stale_s: float = Field(
        5.0, gt=0, description="a stream with no sample for this long is masked as absent (s)"
    )
    delay_s: float = Field(
        0.1, ge=0, le=5, description="windows end this long before now, so late samples land (s)"
    )

    @model_validator(mode="after")
    def _hop_fits(self) -> "WindowSettings":
        if self.hop_s > self.window_s:
            raise ValueError(
                f"hop_s {self.hop_s} is longer than window_s {self.window_s}: samples would be skipped"
            )
        return self


class ModelSettings(_Strict):
    """The classifier checkpoint and how it runs."""

    path: Path = Field(description="checkpoint file written by cosmo-edge finetune (.pt)")
    backend: Literal["auto", "onnxruntime", "torch", "tensorrt"] = Field(
        "auto", description="inference backend; auto: TensorRT with a GPU, else ONNX Runtime, else torch"
    )
    threads: int = Field(1, ge=1, le=16, description="intra-op CPU threads for ONNX Runtime/torch (threads)")


class CurveSettings(_Strict):
    """CURVE encryption and client authentication for a non-loopback publisher."""

    server_secret_key_file: Path = Field(
        description="the server's secret key (zmq.auth .key_secret file, mode 0600)"
    )
    authorized_clients_dir: Path = Field(
        description="directory of client public keys (.key files) allowed to connect"
    )


def _is_loopback_endpoint(endpoint: str) -> bool:
    """True for ipc:// and inproc:// and for tcp:// bound to a loopback address."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = (parts.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name or a host name: not loopback
        return False


def _check_endpoint(value: str, info: ValidationInfo) -> str:
    """ZeroMQ bind endpoint: a known scheme, a tcp port, and CURVE unless it is loopback."""
    parts = urlsplit(value)
    if parts.scheme not in ("tcp", "ipc", "inproc"):
        raise ValueError(f"endpoint {value!r}: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME")
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not port:
            raise ValueError(f"endpoint {value!r}: a tcp endpoint needs a port, e.g. tcp://127.0.0.1:5556")
    if not _is_loopback_endpoint(value) and info.data.get("curve") is None:
        raise ValueError(f"endpoint {value!r} is not loopback; binding it requires the curve section (keys)")
    return value


class PublishSettings(_Strict):
    """ZeroMQ PUB socket for predictions and status (docs/protocol.md, "ZeroMQ messages")."""

    curve: Optional[CurveSettings] = Field(
        None, description="CURVE keys; required for a non-loopback endpoint"
    )
    endpoint: str = Field(
        "tcp://127.0.0.1:5556",
        description="bind endpoint (tcp://HOST:PORT or ipc:///run/cosmo-edge/pub.sock)",
    )
    hwm: int = Field(1000, ge=1, description="ZeroMQ send high-water mark (messages)")
    queue_size: int = Field(
        256,
        ge=1,
        description="bounded drop-oldest queue between inference and the publisher thread (messages)",
    )
    status_period_s: float = Field(1.0, gt=0, le=60, description="period of status messages (s)")

    _endpoint = field_validator("endpoint")(_check_endpoint)


class LabelSettings(_Strict):
    """Intake of user labels for on-device fine-tuning."""

    enabled: bool = Field(False, description="accept labels")
    curve: Optional[CurveSettings] = Field(
        None, description="CURVE keys; required for a non-loopback endpoint"
    )
    endpoint: str = Field("tcp://127.0.0.1:5557", description="bind endpoint of the label socket")
    buffer_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="history of recent windows labels can refer to (s; about 0.8 MB per window with depth)",
    )

    _endpoint = field_validator("endpoint")(_check_endpoint)


def _check_loopback_host(value: str) -> str:
    """The health endpoint has no authentication: loopback addresses only."""
    if value == "localhost":
        return value
    try:
        loopback = ipaddress.ip_address(value.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"health host {value!r} is not loopback (127.0.0.1, ::1 or localhost); the endpoint has no "
            "authentication: reach it through an SSH tunnel or a local agent"
        )
    return value


class HealthSettings(_Strict):
    """The HTTP health and metrics endpoint (/healthz /readyz /metrics; docs/operations.md section 5)."""

    enabled: bool = Field(True, description="serve the endpoint (false: metrics and watchdog still run)")
    host: str = Field("127.0.0.1", description="loopback address to bind (127.0.0.1, ::1 or localhost)")
    port: int = Field(9810, ge=0, le=65535, description="TCP port (0: any free port)")

    _host = field_validator("host")(_check_loopback_host)


class FinetuneSettings(_Strict):
    """Background fine-tuning on collected labels (cosmo_edge.finetune, docs/learning.md)."""

    enabled: bool = Field(False, description="fine-tune in the background when enough new labels arrived")
    min_new_labels: int = Field(
        20, ge=1, description="new labeled windows that start a round at once (windows)"
    )
    period_min: float = Field(
        30.0, gt=0, description="also start a round this often when at least one label is new (minutes)"
    )
    epochs: int = Field(20, ge=2, le=1000, description="stage-2 epochs per round (epochs)")
    t_iter_epochs: int = Field(5, ge=1, description="epochs per encoder/classifier block (epochs)")
    first_phase: Literal["classifier", "encoders"] = Field(
        "classifier",
        description="part trained in the first block (classifier: adapt the head to the features)",
    )
    holdout_fraction: float = Field(
        0.25, gt=0, lt=1, description="share of each class held out to judge a candidate (fraction)"
    )
    f1_margin: float = Field(
        0.02, ge=0, le=1, description="macro-F1 drop still accepted at equal or better accuracy (F1 points)"
    )
    isolation: Literal["process", "thread"] = Field(
        "process", description="run rounds in a niced worker process or a thread of the daemon"
    )
    threads: int = Field(1, ge=1, le=16, description="torch intra-op threads of a round (threads)")
    nice: int = Field(10, ge=0, le=19, description="niceness added to the worker process (levels)")
    round_timeout_s: float = Field(600.0, gt=0, description="a round running longer is killed (s)")


class DaemonConfig(_Strict):
    """Top level of the daemon's YAML file."""

    simulator: Optional[SimulatorConfig] = Field(
        None, description="run the built-in simulator; sensors then use sim:<device> ports"
    )
    sensors: List[Sensor] = Field(min_length=1, description="sensors to open; one per modality")
    timebase: TimebaseSettings = Field(
        default_factory=TimebaseSettings, description="clock alignment parameters"
    )
    window: WindowSettings = Field(default_factory=WindowSettings, description="window cutting")
    model: ModelSettings = Field(description="classifier and backend")
    publish: PublishSettings = Field(default_factory=PublishSettings, description="prediction publisher")
    labels: LabelSettings = Field(default_factory=LabelSettings, description="label intake")
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings, description="on-device fine-tuning")
    health: HealthSettings = Field(
        default_factory=HealthSettings, description="HTTP health and metrics endpoint (loopback)"
    )
    state_dir: Path = Field(
        Path("/var/lib/cosmo-edge"),
        description="engines, labels and promoted models (systemd StateDirectory=)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="logging threshold")

    @field_validator("sensors")
    @classmethod
    def _sensors_consistent(cls, sensors: List[Any], info: ValidationInfo) -> List[Any]:
        seen: Dict[str, int] = {}
        for index, sensor in enumerate(sensors):
            if sensor.modality in seen:
                raise ValueError(
                    f"sensors {seen[sensor.modality]} and {index} both feed modality {sensor.modality!r}"
                )
            seen[sensor.modality] = index
            uses_sim = any(str(v).startswith(SIM_PREFIX) for v in sensor.driver_kwargs().values())
            if uses_sim and info.data.get("simulator") is None:
                raise ValueError(f"sensor {index} uses a sim: device but there is no simulator section")
        return sensors


def _issues_from_validation(error: ValidationError, root: Any) -> List[ConfigIssue]:
    issues = []
    for entry in error.errors():
        loc = list(entry["loc"])
        if entry["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
        line, path = locate(root, loc)
        message = entry["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        issues.append(ConfigIssue(line, path, message))
    return issues


def parse_config(text: str, source: str = "<config>") -> DaemonConfig:
    """Validate YAML ``text``; raises ``ConfigError`` listing every issue with its line."""
    root = compose(text, source)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError(source, [ConfigIssue(1, "", "expected a mapping of settings at the top level")])
    data, issues, complete = build(root)
    if not complete:
        raise ConfigError(source, sorted(issues, key=lambda i: (i.line or 0, i.path)))
    try:
        config = DaemonConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issues_from_validation(exc, root))
        config = None
    if issues:
        raise ConfigError(source, sorted(issues, key=lambda i: (i.line or 0, i.path)))
    assert config is not None
    return config


def load_config(path: Union[str, Path]) -> DaemonConfig:
    """Read and validate a YAML config file (see ``parse_config``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue(None, "", f"cannot read: {exc}")]) from exc
    config = parse_config(text, str(path))
    logger.debug("loaded config %s: %d sensors, backend %s", path, len(config.sensors), config.model.backend)
    return config
