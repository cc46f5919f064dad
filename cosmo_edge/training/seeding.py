"""One seed for every random number generator a run touches (Python, NumPy, torch)."""

import logging
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's and torch's global RNGs; return a NumPy Generator for explicit draws."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU torch.Generator seeded with ``seed`` (augmentations draw from it)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
