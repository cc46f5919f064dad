"""Shared helper for the simulator tests: run every simulated stream through its real driver."""

import threading
import time
from typing import Dict, List, Tuple

from drivers.base import Driver
from drivers.registry import create_driver
from drivers.sample import Sample
from drivers.sim import Simulator


def run_drivers(
    sim: Simulator, extra_s: float = 0.5, during=None
) -> Tuple[Dict[str, List[Sample]], Dict[str, Driver]]:
    """Open every simulated stream's driver, read until the script ends, close; return samples and drivers.

    ``during(sim)``, when given, runs in the calling thread while the drivers read.
    """
    drivers = {}
    for name, config in sim.driver_configs().items():
        config = dict(config)
        kind = config.pop("type")
        if kind == "imu_serial":
            config["backoff_initial_s"] = 0.02
        if kind == "realsense_depth":
            config["queue_size"] = 256  # the tests check content, not how fast a loaded machine reads
        drivers[name] = create_driver(kind, **config)
        drivers[name].open()
    got: Dict[str, List[Sample]] = {name: [] for name in drivers}
    stop = threading.Event()

    def reader(name: str) -> None:
        while not stop.is_set():
            sample = drivers[name].read(0.1)
            if sample is not None:
                got[name].append(sample)

    threads = [threading.Thread(target=reader, args=(name,), daemon=True) for name in drivers]
    for thread in threads:
        thread.start()
    if during is not None:
        during(sim)
    assert sim.wait(timeout_s=30.0)
    time.sleep(extra_s)
    stop.set()
    for thread in threads:
        thread.join()
    for driver in drivers.values():
        driver.close()
    return got, drivers
