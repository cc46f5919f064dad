"""A starting model that is poor on part of the classes: a checkpoint with output rows exchanged.

``confused_model(path)`` writes the bundled model (or ``source``) with the last classifier layer's
weight and bias rows of each pair in ``swaps`` exchanged (default: wave <-> clap, squat <-> sit). The
encoders and the fusion stay as trained, so the model reads this person's waving as clapping and
squatting as sitting: four of the six simulator activities come out wrong. Fine-tuning checks start
from it because the bundled model already classifies the simulator's test windows almost perfectly,
so a round from it shows nothing about what the round learned. Used by ``cosmo-edge bench``,
``benchmarks/finetune.py`` and the daemon learning tests.
"""

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from cosmo_edge.bundled import SIM_MODEL

PathLike = Union[str, Path]
SWAPS: Tuple[Tuple[str, str], ...] = (("wave", "clap"), ("squat", "sit"))


def confused_model(
    path: PathLike, source: Optional[PathLike] = None, swaps: Sequence[Tuple[str, str]] = SWAPS
) -> Path:
    """Write ``source`` (default: the bundled model) with the output rows of ``swaps`` exchanged.

    Raises ValueError when a swapped class is not among the checkpoint's label names.
    """
    import torch

    from cosmo_edge.training.checkpoint import read_checkpoint

    payload = read_checkpoint(SIM_MODEL if source is None else source, kind="classifier")
    names = [str(n) for n in payload["label_names"]]
    last = max(k for k in payload["state_dict"] if k.startswith("head.") and k.endswith(".weight"))
    prefix = last[: -len("weight")]
    for a, b in swaps:
        missing = [n for n in (a, b) if n not in names]
        if missing:
            raise ValueError(f"cannot swap {a}/{b}: {missing} not among the model's classes {names}")
        i, j = names.index(a), names.index(b)
        for key in (prefix + "weight", prefix + "bias"):
            tensor = payload["state_dict"][key]
            tensor[[i, j]] = tensor[[j, i]].clone()
    torch.save(payload, str(path))
    return Path(path)
