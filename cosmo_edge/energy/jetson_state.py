"""The Jetson power mode and clock state recorded with every result (platform.md section 8).

``nvpmodel -q`` prints the active power mode; ``jetson_clocks --show`` prints whether clocks are
pinned (it needs root on most images). Each is recorded as its output, or as unavailable with the
reason: a result without them cannot be compared with another run.
"""

import logging
import shutil
import subprocess
from typing import Dict, List

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 5.0


def command_output(argv: List[str], timeout_s: float = COMMAND_TIMEOUT_S) -> Dict[str, object]:
    """``{"available": True, "output": ...}`` or ``{"available": False, "reason": ...}`` for ``argv``."""
    if shutil.which(argv[0]) is None:
        return {"available": False, "reason": f"{argv[0]} not found on PATH"}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"{' '.join(argv)}: {exc}"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return {"available": False, "reason": f"{' '.join(argv)} exited {done.returncode}: {tail[0][:200]}"}
    return {"available": True, "output": done.stdout.strip()}


def jetson_power_state() -> Dict[str, Dict[str, object]]:
    """``nvpmodel -q`` and ``jetson_clocks --show`` results (see ``command_output``)."""
    return {
        "nvpmodel": command_output(["nvpmodel", "-q"]),
        "jetson_clocks": command_output(["jetson_clocks", "--show"]),
    }
