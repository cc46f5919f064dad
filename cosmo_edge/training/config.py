"""Typed configuration of a training run, with plain-dict round trips for the run directory.

Defaults follow cosmo-method.md section 6.4 (project column) unless a comment says otherwise; the
exceptions were selected on the UTD-MHAD validation split (docs/training.md section 8).
``RunConfig.from_dict`` rejects unknown keys, naming their dotted path, so a typo cannot silently
fall back to a default.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

from cosmo_edge.training.augment import AugmentConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration dict has unknown keys or values of the wrong kind."""


@dataclass
class DataConfig:
    """Which data, which modalities, which label rate (section 7)."""

    dataset: str = "utd-mhad"  # "utd-mhad" or "synthetic" (generated, for tests and the demo)
    data_root: Optional[str] = None  # UTD-MHAD folder; None -> $COSMO_DATA
    modalities: List[str] = field(default_factory=lambda: ["imu", "skeleton"])
    label_rate: float = 10.0  # percent of a nominal 20 training trials per class
    train_subjects: List[int] = field(default_factory=list)  # empty: UTD-MHAD 1-6, synthetic 1-3
    test_subjects: List[int] = field(default_factory=list)  # empty: UTD-MHAD 7-8, synthetic 4-5
    cache_dir: Optional[str] = None  # where prepared arrays are cached (None: no cache)
    synthetic_noise_std: float = 0.3  # "synthetic" only: noise relative to the signal scale


@dataclass
class ModelConfig:
    """Encoder options per modality and the stage-2 classifier (sections 4 and 5)."""

    encoders: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # modality -> build_encoder options
    fusion_op: str = "concat"  # "concat" (ConcateAttn) or "sum" (SumAttn)
    qom_lambda: float = 0.5  # weight of the QoM prior in the blend (0: attention only; spec default 0.8)
    hidden_dim: int = 128  # width of the classifier head's hidden layer
    dropout: float = 0.5  # dropout in the classifier head
    score_scale: bool = False  # divide attention scores by sqrt(d_j)


@dataclass
class Stage1Config:
    """Contrastive fusion pre-training (section 2)."""

    epochs: int = 100  # spec default 300; 200 was no better on validation (docs/training.md)
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: List[int] = field(default_factory=lambda: [35, 70])
    lr_gamma: float = 0.9
    num_views: int = 9  # P fused positives per sample
    temperature: float = 0.07
    weights: str = "dirichlet"  # "dirichlet" or "fixed" (w_p = p / (P + 1), M = 2)
    dirichlet_alpha: float = 1.0
    dirichlet_scope: str = "sample"  # "sample" or "batch"
    proj_dim: int = 128
    head_hidden: int = 256
    # Stronger than the stage-2 default, and one crop per modality (selected on validation, docs/training.md).
    augment: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(
            crop_min=0.6, crop_aligned=False, jitter_std=0.1, scale_std=0.2, rotation_deg=30.0
        )
    )
    augment_copies: int = 1  # augmented copies per sample whose projections the fused views mix


@dataclass
class QoMConfig:
    """Quality-of-modality weights from unlabeled stage-1 features (section 3)."""

    mode: str = "computed"  # "computed", "fixed" or "uniform"
    features: str = "encoder"  # "encoder", "projection" or "raw"
    pca_dims: int = 10
    hopkins_repeats: int = 5
    k_max: Optional[int] = None  # None: min(2K, n - 1)
    c_offset: float = 1.0  # q = H / (c + c_offset)
    kmeans_n_init: int = 10
    silhouette_sample_size: int = 5000
    silhouette: str = "cross-subject"  # "cross-subject" (fit on half the subjects) or "plain" (spec)
    smooth_window: int = 5  # moving average over k before the argmax (1: none, as in the spec)
    fixed_weights: List[float] = field(default_factory=lambda: [0.3, 0.7])  # mode "fixed"


@dataclass
class Stage2Config:
    """Iterative fusion learning on the labeled set (section 6); also used for the baselines."""

    epochs: int = 200  # spec default 500; validation accuracy is flat after about 150 epochs
    batch_size: int = 16
    lr_classifier: float = 0.01
    lr_encoders: float = 0.01  # spec default 0.001 (the reference's intended 10:1 ratio)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: List[int] = field(default_factory=lambda: [140, 160, 180])
    lr_gamma: float = 0.9
    t_iter: int = 5  # epochs per block
    first_phase: str = "classifier"  # "classifier" or "encoders" (the deck's order, spec default)
    alternation: str = "iterative"  # "iterative", "joint" (both parts every step) or "reference"
    eval_every: int = 10  # epochs between validation/test evaluations (the last epoch always)
    encoder_bn: str = "train"  # "train" or "frozen": keep the encoders' BatchNorm statistics from stage 1
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # the same for Cosmo and the baseline


def supervised_defaults() -> Stage2Config:
    """The supervised-from-scratch baseline: both parts trained jointly at the classifier lr."""
    return Stage2Config(alternation="joint", lr_encoders=0.01, first_phase="encoders")


@dataclass
class RunConfig:
    """Everything one run needs; written to ``config.json`` in the run directory."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    qom: QoMConfig = field(default_factory=QoMConfig)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    supervised: Stage2Config = field(default_factory=supervised_defaults)

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested dict (JSON-able)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunConfig":
        """Inverse of ``to_dict``; missing keys keep their defaults, unknown keys raise ConfigError."""
        return dataclass_from_dict(cls, data, "")


def dataclass_from_dict(cls: Type[T], data: Dict[str, Any], path: str) -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        names = ", ".join(f"{path}{key}" for key in unknown)
        raise ConfigError(f"unknown config keys: {names}")
    values: Dict[str, Any] = {}
    defaults = cls()
    for name, value in data.items():
        current = getattr(defaults, name)
        if dataclasses.is_dataclass(current):
            values[name] = dataclass_from_dict(type(current), value, f"{path}{name}.")
        else:
            values[name] = value
    return dataclasses.replace(defaults, **values)


def apply_overrides(config: RunConfig, overrides: Dict[str, Any]) -> RunConfig:
    """Return a copy of ``config`` with dotted-key overrides, e.g. {"stage1.epochs": 50}.

    Keys under ``model.encoders.<modality>.`` are free-form encoder options and are created as needed.
    """
    data = config.to_dict()
    for dotted, value in overrides.items():
        free_form = dotted.startswith("model.encoders.")
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            if free_form:
                node = node.setdefault(key, {})
            elif isinstance(node.get(key), dict):
                node = node[key]
            else:
                raise ConfigError(f"unknown config key: {dotted}")
        if not free_form and keys[-1] not in node:
            raise ConfigError(f"unknown config key: {dotted}")
        node[keys[-1]] = value
    return RunConfig.from_dict(data)
