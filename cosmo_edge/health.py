"""Local HTTP health endpoint: ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics`` (Prometheus).

- ``GET /healthz``: 200 while the inference loop ticked within ``liveness_timeout_s`` (or has not
  started yet), else 503. Body ``{"status": "starting"|"ok"|"stalled", "loop_ticks": n,
  "last_tick_age_s": s|null, "uptime_s": s}``.
- ``GET /readyz``: 200 when every configured sensor is connected, the model is warm and a window was
  cut within ``window_timeout_s``; else 503. Body ``{"ready": bool, "checks": {"sensors": {...},
  "model": {...}, "windows": {...}}, "reasons": [...]}``, each reason one short sentence.
- ``GET /metrics``: ``prometheus_client`` text exposition of the registry passed in.
- ``HEAD`` works on all three; an unknown path is 404, another method 501 (http.server's answer).

The server binds loopback only (``127.0.0.1``, ``::1`` or ``localhost``): it carries no
authentication; expose it elsewhere through a reverse proxy or an SSH tunnel. It runs in its own
daemon thread (``ThreadingHTTPServer``, one short-lived thread per request), so a slow scraper
never blocks the pipeline. The daemon feeds ``HealthState`` from its loops; every method of it is
thread-safe and O(1).
"""

import ipaddress
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9810
JSON_TYPE = "application/json"
POLL_S = 0.1  # how often the serving thread checks for shutdown (s)


class HealthState:
    """What liveness and readiness are computed from; updated by the daemon's loops.

    Args:
        sensors: the configured sensor (stream) names; each must be connected to be ready.
        liveness_timeout_s: the inference loop must tick at least this often to be alive (s).
        window_timeout_s: a window must have been cut this recently to be ready (s).
        clock: seconds on a monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        sensors: Sequence[str],
        liveness_timeout_s: float = 10.0,
        window_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if liveness_timeout_s <= 0 or window_timeout_s <= 0:
            raise ValueError("liveness_timeout_s and window_timeout_s must be > 0 s")
        self.liveness_timeout_s = float(liveness_timeout_s)
        self.window_timeout_s = float(window_timeout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._started_s = clock()
        self._sensors: Dict[str, bool] = {name: False for name in sensors}
        self._loop_ticks = 0
        self._last_tick_s: Optional[float] = None
        self._windows = 0
        self._last_window_s: Optional[float] = None
        self._model_warm = False
        self._backend: Optional[str] = None

    def loop_tick(self) -> None:
        """One iteration of the inference loop finished (call it also when no window was due)."""
        now = self._clock()
        with self._lock:
            self._loop_ticks += 1
            self._last_tick_s = now

    def window_cut(self) -> None:
        """A window was cut and sent to the model."""
        now = self._clock()
        with self._lock:
            self._windows += 1
            self._last_window_s = now

    def set_sensor(self, name: str, connected: bool) -> None:
        """Record whether sensor ``name`` is connected (an unknown name is added)."""
        with self._lock:
            self._sensors[name] = bool(connected)

    def set_model(self, warm: bool, backend: Optional[str] = None) -> None:
        """Record whether the backend passed warm-up, and its name."""
        with self._lock:
            self._model_warm = bool(warm)
            if backend is not None:
                self._backend = backend

    @property
    def loop_ticks(self) -> int:
        """Inference-loop iterations so far (usable as a watchdog progress probe)."""
        return self._loop_ticks

    def liveness(self) -> Tuple[bool, Dict[str, Any]]:
        """(alive, body) of ``/healthz``."""
        now = self._clock()
        with self._lock:
            age = None if self._last_tick_s is None else now - self._last_tick_s
            ticks = self._loop_ticks
        # Before the first tick the daemon is starting up (engine build, sensor open): alive; a
        # start-up that never ends is systemd's TimeoutStartSec= to catch, not liveness.
        alive = age is None or age <= self.liveness_timeout_s
        status = "starting" if age is None else ("ok" if alive else "stalled")
        body = {
            "status": status,
            "loop_ticks": ticks,
            "last_tick_age_s": None if age is None else round(age, 3),
            "uptime_s": round(now - self._started_s, 3),
        }
        return alive, body

    def readiness(self) -> Tuple[bool, Dict[str, Any]]:
        """(ready, body) of ``/readyz``; also what gates ``READY=1``."""
        now = self._clock()
        with self._lock:
            sensors = dict(self._sensors)
            warm, backend = self._model_warm, self._backend
            windows, last_window_s = self._windows, self._last_window_s
        reasons: List[str] = []
        down = sorted(name for name, ok in sensors.items() if not ok)
        if not sensors:
            reasons.append("no sensors configured")
        if down:
            reasons.append(f"sensors not connected: {', '.join(down)}")
        if not warm:
            reasons.append("model not warmed up")
        window_age = None if last_window_s is None else now - last_window_s
        if window_age is None:
            reasons.append("no window cut yet")
        elif window_age > self.window_timeout_s:
            reasons.append(f"no window for {window_age:.1f} s (limit {self.window_timeout_s:.1f} s)")
        body = {
            "ready": not reasons,
            "checks": {
                "sensors": sensors,
                "model": {"warm": warm, "backend": backend},
                "windows": {
                    "count": windows,
                    "last_age_s": None if window_age is None else round(window_age, 3),
                },
            },
            "reasons": reasons,
        }
        return not reasons, body


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    """Routes the three paths; the server object carries the state and the metrics registry."""

    server: "HealthServer"
    server_version = "cosmo-edge-health"
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        """Answer with status line, headers and body."""
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        """Answer with status line and headers only."""
        self._respond(send_body=False)

    def _respond(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok, body = self.server.state.liveness()
            status, content_type, data = (200 if ok else 503), JSON_TYPE, _json(body)
        elif path == "/readyz":
            ok, body = self.server.state.readiness()
            status, content_type, data = (200 if ok else 503), JSON_TYPE, _json(body)
        elif path == "/metrics":
            status = 200
            content_type, data = self.server.render_metrics()
        else:
            status, content_type = 404, JSON_TYPE
            data = _json({"error": f"unknown path {path}", "paths": ["/healthz", "/readyz", "/metrics"]})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Requests are logged at DEBUG (a scraper every 15 s would flood the journal)."""
        logger.debug("%s %s -> %s", self.command, self.path, code)

    def log_error(self, format: str, *args: Any) -> None:
        """Protocol errors (bad request lines) at INFO, through the module logger."""
        logger.info("health endpoint: " + format, *args)


def _json(body: Dict[str, Any]) -> bytes:
    return (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")


class HealthServer(ThreadingHTTPServer):
    """The HTTP server; ``start()`` binds and serves in a thread, ``stop()`` shuts it down.

    Args:
        state: liveness/readiness source.
        registry: a ``prometheus_client.CollectorRegistry`` for ``/metrics`` (None: empty page).
        host: loopback address to bind (ValueError otherwise).
        port: TCP port; 0 picks a free one (see ``port`` after ``start``).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # listen backlog; the default 5 drops SYNs of a burst of scrapers

    def __init__(
        self, state: HealthState, registry: Any = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"health endpoint must bind loopback, not {host!r} (it has no authentication)")
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.state = state
        self.registry = registry
        self._thread: Optional[threading.Thread] = None
        super().__init__((host.strip("[]"), int(port)), _Handler, bind_and_activate=False)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self.server_address[1])

    def render_metrics(self) -> Tuple[str, bytes]:
        """(content type, body) of ``/metrics``."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if self.registry is None:
            return CONTENT_TYPE_LATEST, b""
        return CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises OSError when the port is taken."""
        try:
            self.server_bind()
            self.server_activate()
        except OSError:
            self.server_close()
            raise
        self._thread = threading.Thread(
            target=self.serve_forever, args=(POLL_S,), name="health-http", daemon=True
        )
        self._thread.start()
        logger.info("health endpoint on http://%s:%d (/healthz /readyz /metrics)", *self.server_address[:2])

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout_s)
            self._thread = None
        self.server_close()
