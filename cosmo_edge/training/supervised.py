"""The supervised-from-scratch baseline: the same encoders and classifier, trained jointly on labels.

No pre-training, no alternation: ``train_supervised`` runs the stage-2 trainer with
``alternation = "joint"`` on a freshly initialised ``FusionClassifier``.
"""

import dataclasses
import logging
from typing import Dict, Optional

from cosmo_edge.training.config import Stage2Config
from cosmo_edge.training.stage2 import Split, train_fusion_classifier
from models.classifier import FusionClassifier

logger = logging.getLogger(__name__)


def train_supervised(
    model: FusionClassifier,
    train: Split,
    config: Stage2Config,
    seed: int,
    eval_sets: Optional[Dict[str, Split]] = None,
    progress: bool = True,
) -> Dict:
    """Train every part of ``model`` together on the labeled split (forces ``alternation = "joint"``)."""
    if config.alternation != "joint":
        logger.info("supervised baseline: alternation %r replaced by 'joint'", config.alternation)
        config = dataclasses.replace(config, alternation="joint")
    return train_fusion_classifier(model, train, config, seed, eval_sets, progress, desc="supervised")
