"""A live terminal view of the daemon's messages, with the simulator's ground truth beside them.

``LiveView`` keeps the latest ``activity.window``, ``activity.change`` and ``status`` messages and turns
them into a dozen lines; ``InPlaceWriter`` redraws those lines where they were (ANSI: cursor up, clear
line), so the terminal shows one compact, updating block instead of a scrolling dump.
``GroundTruth`` reads the simulator's ``ground_truth.jsonl`` (segments on the host monotonic clock) and
says which activity was scripted during a window; the view then keeps a running accuracy, over all
windows (label of the segment covering most of the window) and over settled windows (entirely
inside one segment, so no transition blurs them).

Latency shown: ``predict`` as the daemon measured it, and end-to-end from the moment the window became
due (its end plus ``delay_s``) to its receipt here. Both clocks are ``time.monotonic_ns()``, so the
end-to-end figure is meaningful only when the subscriber runs on the daemon's machine.
"""

import collections
import json
import logging
import time
from pathlib import Path
from typing import IO, Any, Deque, Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

BAR_WIDTH = 30
TOP_K = 3


class GroundTruth:
    """Scripted segments ``(start_ns, end_ns, activity)`` from a simulator ground-truth file.

    The file may not exist yet when the view starts (the daemon writes it when the simulator
    starts): ``refresh()`` retries until it can be read.
    """

    def __init__(self, path: Optional[Path]) -> None:
        self.path = Path(path) if path is not None else None
        self.segments: List[Tuple[int, int, str]] = []

    def refresh(self) -> bool:
        """(Re)read the file if there is nothing yet; True once segments are known."""
        if self.segments or self.path is None:
            return bool(self.segments)
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        segments = []
        for line in lines:
            if line.strip():
                record = json.loads(line)
                segments.append((int(record["start_ns"]), int(record["end_ns"]), str(record["activity"])))
        self.segments = sorted(segments)
        return bool(self.segments)

    def label_at(self, t_ns: int) -> Optional[str]:
        """The scripted activity at ``t_ns``, or None outside the script."""
        for start, end, activity in self.segments:
            if start <= t_ns < end:
                return activity
        return None

    def window_label(self, start_ns: int, end_ns: int) -> Tuple[Optional[str], float]:
        """The activity covering most of ``[start_ns, end_ns]`` and the fraction it covers."""
        best, best_overlap = None, 0
        for start, end, activity in self.segments:
            overlap = min(end, end_ns) - max(start, start_ns)
            if overlap > best_overlap:
                best, best_overlap = activity, overlap
        span = max(1, end_ns - start_ns)
        return best, best_overlap / span


class Score:
    """Running accuracy of predicted labels against the ground truth."""

    def __init__(self) -> None:
        self.scored = self.correct = 0
        self.settled = self.settled_correct = 0

    def add(self, predicted: str, truth: Optional[str], purity: float) -> None:
        if truth is None:
            return
        hit = predicted == truth
        self.scored += 1
        self.correct += hit
        if purity >= 0.999:
            self.settled += 1
            self.settled_correct += hit

    @staticmethod
    def _ratio(hit: int, total: int) -> Optional[float]:
        return hit / total if total else None

    @property
    def accuracy(self) -> Optional[float]:
        return self._ratio(self.correct, self.scored)

    @property
    def settled_accuracy(self) -> Optional[float]:
        return self._ratio(self.settled_correct, self.settled)


class LiveView:
    """State of the live view; feed it ``(topic, message)`` pairs and ask for ``lines()``."""

    def __init__(self, endpoint: str = "", truth: Optional[GroundTruth] = None) -> None:
        self.endpoint = endpoint
        self.truth = truth
        self.score = Score()
        self.started = time.monotonic()
        self.window: Optional[Dict[str, Any]] = None
        self.window_truth: Optional[str] = None
        self.status: Optional[Dict[str, Any]] = None
        self.activity: Optional[str] = None
        self.activity_since_ns: Optional[int] = None
        self.counts: Dict[str, int] = collections.defaultdict(int)
        self.gaps = 0
        self._last_seq: Dict[str, int] = {}
        self.e2e_ms: Deque[float] = collections.deque(maxlen=1000)

    def handle(self, topic: str, message: Dict[str, Any], receipt_ns: Optional[int] = None) -> None:
        """Take one message (``receipt_ns``: ``time.monotonic_ns()`` when it arrived)."""
        receipt_ns = time.monotonic_ns() if receipt_ns is None else receipt_ns
        self.counts[topic] += 1
        seq = message.get("seq")
        if isinstance(seq, int):
            last = self._last_seq.get(topic)
            if last is not None and seq > last + 1:
                self.gaps += seq - last - 1
            self._last_seq[topic] = seq
        if topic == "activity.window":
            self._on_window(message, receipt_ns)
        elif topic == "activity.change":
            self.activity, self.activity_since_ns = message.get("label"), int(message.get("window_end_ns", 0))
        elif topic == "status":
            self.status = message
            if self.activity is None and message.get("activity"):
                self.activity = message.get("activity")

    def _on_window(self, message: Dict[str, Any], receipt_ns: int) -> None:
        self.window = message
        if message.get("due_ns"):
            self.e2e_ms.append((receipt_ns - int(message["due_ns"])) * 1e-6)
        self.window_truth = None
        if self.truth is not None and self.truth.refresh():
            start = int(message.get("window_start_ns", message["window_end_ns"]))
            truth, purity = self.truth.window_label(start, int(message["window_end_ns"]))
            self.window_truth = truth
            self.score.add(str(message["label"]), truth, purity)

    # ------------------------------------------------------------------ rendering

    def lines(self) -> List[str]:
        """The view as lines of text (no trailing newlines)."""
        status, window = self.status or {}, self.window
        model = (window or status).get("model_version") or "-"
        backend = (window or {}).get("engine") or status.get("backend") or "-"
        elapsed = time.monotonic() - self.started
        out = [f"cosmo-edge live  {self.endpoint}  model {model} ({backend})  {elapsed:5.1f} s"]
        out.append(self._activity_line())
        out.extend(self._window_lines(window))
        out.append(self._latency_line(window))
        out.append(self._accuracy_line())
        out.append(self._sensors_line(status))
        counts = self.counts
        out.append(
            f"messages  : {counts['activity.window']} windows, {counts['activity.change']} changes, "
            f"{counts['status']} status, {self.gaps} lost (seq gaps)"
        )
        return out

    def _activity_line(self) -> str:
        activity = self.activity or "(waiting)"
        since = ""
        if self.activity_since_ns and self.window:
            since = f" since {(int(self.window['window_end_ns']) - self.activity_since_ns) * 1e-9:4.1f} s"
        truth = ""
        if self.truth is not None:
            now_truth = self.truth.label_at(time.monotonic_ns()) if self.truth.refresh() else None
            truth = f"   truth now: {now_truth or '-'}"
        return f"activity  : {activity:<12}{since}{truth}"

    def _window_lines(self, window: Optional[Dict[str, Any]]) -> List[str]:
        if window is None:
            return ["window    : (no prediction yet: sensors opening or clocks warming up)"] + [""] * TOP_K
        present = " ".join(m for m, ok in window.get("present", {}).items() if ok) or "-"
        missing = window.get("missing") or {}
        absent = ", ".join(f"{m}: {r}" for m, r in missing.items())
        truth = f"  truth {self.window_truth or '-'}" if self.truth is not None else ""
        label, confidence = window["label"], float(window["confidence"])
        head = f"window {int(window['window_id']):>4}: {label} ({confidence:.2f}){truth}"
        head += f"  [{present}{'; ' + absent if absent else ''}]"
        probs = sorted(window.get("probabilities", {}).items(), key=lambda kv: -kv[1])[:TOP_K]
        rows = []
        for name, p in probs:
            bar = "#" * int(round(p * BAR_WIDTH))
            rows.append(f"            {name:<12} {bar:<{BAR_WIDTH}} {p:.2f}")
        return [head] + rows + [""] * (TOP_K - len(rows))

    def _latency_line(self, window: Optional[Dict[str, Any]]) -> str:
        if window is None:
            return "latency   : -"
        e2e = np.array(self.e2e_ms) if self.e2e_ms else None
        daemon = (self.status or {}).get("inference", {}).get("latency_ms", {})
        predict_ms = float(window.get("latency_ms", 0.0))
        text = f"latency   : predict {predict_ms:.2f} ms (p99 {daemon.get('p99', '-')})"
        if e2e is not None:
            text += f", end-to-end {e2e[-1]:.1f} ms (p99 {np.percentile(e2e, 99):.1f})"
        return text

    def _accuracy_line(self) -> str:
        if self.truth is None:
            return "accuracy  : (no ground truth given)"
        score = self.score
        if not score.scored:
            return "accuracy  : -"
        text = f"accuracy  : {score.correct}/{score.scored} windows = {100 * score.accuracy:.1f}%"
        if score.settled:
            settled = 100 * score.settled_accuracy
            text += f" (inside one activity: {score.settled_correct}/{score.settled} = {settled:.1f}%)"
        return text

    @staticmethod
    def _sensors_line(status: Dict[str, Any]) -> str:
        sensors = status.get("sensors") or {}
        if not sensors:
            return "sensors   : -"
        parts = [f"{n} {s.get('state')} {s.get('samples')}" for n, s in sensors.items()]
        return "sensors   : " + " | ".join(parts)


class InPlaceWriter:
    """Redraws a block of lines in place with ANSI cursor control (cursor up, clear line)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._drawn = 0

    def draw(self, lines: List[str]) -> None:
        """Replace the previously drawn block with ``lines``."""
        parts = []
        if self._drawn:
            parts.append(f"\x1b[{self._drawn}F")  # to the first column, N lines up
        for line in lines:
            parts.append("\x1b[2K" + line + "\n")
        for _ in range(self._drawn - len(lines)):  # a shorter block: clear what is left
            parts.append("\x1b[2K\n")
        self._drawn = max(self._drawn, len(lines))
        self.stream.write("".join(parts))
        self.stream.flush()
