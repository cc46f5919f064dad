"""The bundled model: trained on simulator data so that a fresh clone runs the daemon with no download.

- ``SIM_MODEL``: ``cosmo_edge/assets/sim_model.pt``, an IMU + depth + radar ``FusionClassifier`` for the
  simulator's six activities, trained by ``cosmo_edge.training`` (stage 1, QoM, stage 2);
- ``SIM_MODEL_CARD``: ``sim_model.json`` beside it: how it was trained and its held-out accuracy;
- ``SIM_CONFIG``: ``cosmo_edge/assets/sim_daemon.yaml``, the daemon on the simulator with that model
  (``cosmo-edge run --sim``).

``simdata`` renders training windows from the simulator's motion through the daemon's own channel and
window code; ``train`` runs the recipe; ``cosmo-edge train-bundled`` retrains and rewrites the files.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SIM_MODEL = ASSETS / "sim_model.pt"
SIM_MODEL_CARD = ASSETS / "sim_model.json"
SIM_CONFIG = ASSETS / "sim_daemon.yaml"
