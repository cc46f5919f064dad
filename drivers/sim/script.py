"""Activity scripts and ground truth: what the simulated person does, and when.

A script is a list of ``(activity, duration_s)`` steps, written inline (``"walk:10,wave:8"``) or in
a file with one ``activity duration_s`` (or ``activity,duration_s``) per line and ``#`` comments.
Segments are laid out on simulation time from 0; the ground truth maps them to host monotonic
time (``t0`` + sim time / speed) and is written as JSON lines, one segment per line.
"""

import json
import logging
import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

logger = logging.getLogger(__name__)

DEFAULT_SCRIPT = "stand_still:6,walk:10,wave:8,clap:8,squat:9,sit:8"


@dataclass(frozen=True)
class Segment:
    """One scripted activity on simulation time (seconds from the simulator's time zero)."""

    activity: str
    start_s: float
    end_s: float
    label: int


def parse_script(spec: str) -> List[Tuple[str, float]]:
    """Parse a script file path or an inline ``"activity:seconds,..."`` string."""
    if os.path.isfile(spec):
        with open(spec, encoding="utf-8") as handle:
            text = handle.read()
        items = []
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if line:
                items.append(line.replace(",", " "))
    else:
        items = [part.strip().replace(":", " ") for part in spec.split(",") if part.strip()]
    steps = []
    for item in items:
        fields = item.split()
        if len(fields) != 2:
            raise ValueError(f"script step {item!r}: expected 'activity duration_s'")
        try:
            duration_s = float(fields[1])
        except ValueError as exc:
            raise ValueError(f"script step {item!r}: duration is not a number") from exc
        if duration_s <= 0:
            raise ValueError(f"script step {item!r}: duration must be positive")
        steps.append((fields[0], duration_s))
    if not steps:
        raise ValueError("empty activity script")
    return steps


def build_segments(
    steps: Sequence[Tuple[str, float]], label_names: Sequence[str], repeat: int = 1
) -> List[Segment]:
    """Lay the steps out back to back, ``repeat`` times; labels index ``label_names``."""
    segments = []
    t_s = 0.0
    for _ in range(max(1, int(repeat))):
        for activity, duration_s in steps:
            if activity not in label_names:
                raise ValueError(f"unknown activity {activity!r}; known: {', '.join(label_names)}")
            segments.append(Segment(activity, t_s, t_s + duration_s, list(label_names).index(activity)))
            t_s += duration_s
    return segments


def write_ground_truth(path: str, segments: Sequence[Segment], t0_ns: int, speed: float) -> None:
    """Write one JSON object per segment: activity, label, host monotonic start/end (ns), sim times."""
    with open(path, "w", encoding="utf-8") as handle:
        for seg in segments:
            record = {
                "activity": seg.activity,
                "label": seg.label,
                "start_ns": t0_ns + int(round(seg.start_s / speed * 1e9)),
                "end_ns": t0_ns + int(round(seg.end_s / speed * 1e9)),
                "sim_start_s": seg.start_s,
                "sim_end_s": seg.end_s,
                "speed": speed,
            }
            handle.write(json.dumps(record) + "\n")
    logger.info("ground truth (%d segments) written to %s", len(segments), path)


def read_ground_truth(path: str) -> List[dict]:
    """Read a ground-truth file back (one dict per segment)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
