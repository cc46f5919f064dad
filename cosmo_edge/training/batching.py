"""Training batches that BatchNorm can digest: shuffled index batches, never one of size 1.

With ``drop_last = False`` a final batch of one sample crashes BatchNorm1d in training mode
(cosmo-method.md section 11.1); dropping it would waste one of very few labels. ``batch_indices``
merges a remainder of 1 into the previous batch instead.
"""

import logging
from typing import List, Optional

import numpy as np

logger = logging.getLogger(__name__)


def batch_indices(
    num_samples: int, batch_size: int, rng: Optional[np.random.Generator] = None, shuffle: bool = True
) -> List[np.ndarray]:
    """Split range(num_samples) into batches of ``batch_size``; a last batch of 1 joins the previous one.

    A dataset of exactly one sample cannot be trained with BatchNorm and raises ``ValueError``.
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 for BatchNorm training, got {batch_size}")
    if num_samples < 2:
        raise ValueError(f"need at least 2 training samples, got {num_samples}")
    order = np.arange(num_samples)
    if shuffle:
        order = (rng if rng is not None else np.random.default_rng()).permutation(num_samples)
    batches = [order[i : i + batch_size] for i in range(0, num_samples, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = np.concatenate([batches[-2], batches[-1]])
        batches.pop()
    return batches
