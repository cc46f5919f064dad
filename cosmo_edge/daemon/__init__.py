"""The cosmo-edge daemon: sensors -> timebase -> rings -> windows -> model -> ZeroMQ, as threads.

- ``app.Daemon``: lifecycle and wiring (``cosmo-edge run``);
- ``wiring``: channels (timebase + ring) and the window cutter, shared with ``benchmarks/ingest.py``;
- ``sensors.SensorThread``: one driver per thread, restarted with backoff;
- ``simulation.SimulatorRunner``: the in-process simulator behind ``sim:`` devices;
- ``predictor.WindowPredictor``: normalisation, backend and per-frame feature cache;
- ``inference.InferenceLoop``: cut, classify and publish every hop;
- ``activity.ActivityTracker``: activity changes with hysteresis;
- ``operations.DaemonOperations``: health endpoint, metrics and the progress-gated watchdog;
- ``view`` and ``subscriber``: the live terminal view (``cosmo-edge subscribe``, ``run --show``).

Nothing heavy is imported here, so ``cosmo-edge --help`` stays fast.
"""
