"""Quality of modality (cosmo-method.md section 3): clusterability of each modality's features.

For modality j with unlabeled features X_j: standardise, PCA to ``pca_dims``; H_j = Hopkins statistic
(mean of ``hopkins_repeats`` seeded draws; ~0.5 uniform, -> 1 clustered); k*_j = the KMeans k in
[2, k_max] with the best mean silhouette (ties -> smaller k); c_j = |k*_j - K|; q_j = H_j / (c_j + 1);
beta_QoM = q / sum(q). ``compute_qom`` returns a JSON-able dict with every intermediate value.

Project change to the silhouette step (docs/training.md, "QoM on UTD-MHAD"): by default the
silhouette is scored across subjects (clusters fitted on half of the subjects, scored on the other
half) and the curve is smoothed over ``smooth_window`` neighbouring k before the argmax. The plain
per-spec silhouette (``qom.silhouette = "plain"``, ``qom.smooth_window = 1``) put k* at k_max for
every modality on UTD-MHAD, because one subject's repetitions of an action are near-duplicates.
"""

import logging
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from cosmo_edge.training.config import QoMConfig

logger = logging.getLogger(__name__)

QOM_MODES = ("computed", "fixed", "uniform")
SILHOUETTES = ("cross-subject", "plain")


def reduce_features(x: np.ndarray, pca_dims: int, seed: int) -> np.ndarray:
    """Standardise each column (constant columns -> 0), then PCA to min(pca_dims, n, d) components."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    components = min(int(pca_dims), x.shape[0], x.shape[1])
    return PCA(n_components=components, random_state=seed).fit_transform(x)


def hopkins_statistic(x: np.ndarray, repeats: int = 5, seed: int = 0) -> float:
    """Plain Hopkins H = sum(u) / (sum(u) + sum(w)), averaged over ``repeats`` draws (section 3.2)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise ValueError(f"Hopkins statistic needs at least 3 points, got {n}")
    m = min(n - 1, max(10, int(math.ceil(0.1 * n))))
    neighbours = NearestNeighbors(n_neighbors=2).fit(x)
    low, high = x.min(axis=0), x.max(axis=0)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(repeats):
        chosen = rng.choice(n, size=m, replace=False)
        w = neighbours.kneighbors(x[chosen], n_neighbors=2)[0][:, 1]  # nearest *other* point
        uniform = rng.uniform(low, high, size=(m, x.shape[1]))
        u = neighbours.kneighbors(uniform, n_neighbors=1)[0][:, 0]
        total = u.sum() + w.sum()
        values.append(float(u.sum() / total) if total > 0 else 0.5)
    return float(np.mean(values))


def _silhouette(x: np.ndarray, labels: np.ndarray, sample_size: int, seed: int) -> float:
    """Mean silhouette, or -1 when the labels form fewer than 2 clusters."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(x):
        return -1.0
    return float(silhouette_score(x, labels, sample_size=min(sample_size, len(x)), random_state=seed))


def group_halves(groups: Optional[np.ndarray]) -> Optional[List[np.ndarray]]:
    """Split sorted unique group ids (subjects) alternately into two boolean masks; None if < 2 groups."""
    if groups is None:
        return None
    ids = np.unique(groups)
    if len(ids) < 2:
        return None
    return [np.isin(groups, ids[0::2]), np.isin(groups, ids[1::2])]


def silhouette_curve(
    x: np.ndarray,
    k_values: Sequence[int],
    seed: int = 0,
    n_init: int = 10,
    sample_size: int = 5000,
    groups: Optional[np.ndarray] = None,
) -> Dict[int, float]:
    """Mean silhouette of KMeans(k) for each k.

    Without ``groups`` this is the plain silhouette on all points. With ``groups`` (subject ids) the
    clusters are fitted on one half of the subjects and the other half is scored under its
    nearest-centroid assignment, averaged over both directions: only clusters that hold across
    subjects count, not the tight groups that one subject's repetitions of a movement form.
    """
    from sklearn.cluster import KMeans

    halves = group_halves(groups)
    scores: Dict[int, float] = {}
    for k in k_values:
        if halves is None:
            labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
            scores[k] = _silhouette(x, labels, sample_size, seed)
            continue
        values = []
        for fit_mask, score_mask in ((halves[0], halves[1]), (halves[1], halves[0])):
            if fit_mask.sum() <= k:
                values.append(-1.0)
                continue
            centroids = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x[fit_mask])
            held_out = x[score_mask]
            values.append(_silhouette(held_out, centroids.predict(held_out), sample_size, seed))
        scores[k] = float(np.mean(values))
    return scores


def smooth_curve(scores: Dict[int, float], window: int) -> Dict[int, float]:
    """Centred moving average over ``window`` consecutive k (shrinking at the ends); 1 = unchanged."""
    ks = sorted(scores)
    values = np.array([scores[k] for k in ks])
    half = max(0, int(window) // 2)
    return {k: float(values[max(0, i - half) : i + half + 1].mean()) for i, k in enumerate(ks)}


def best_cluster_count(
    x: np.ndarray,
    k_max: int,
    seed: int = 0,
    n_init: int = 10,
    sample_size: int = 5000,
    groups: Optional[np.ndarray] = None,
    smooth_window: int = 1,
) -> Tuple[int, Dict[int, float]]:
    """k in [2, k_max] maximising the (optionally smoothed) silhouette curve; ties go to the smaller k.

    Returns (k*, the raw curve {k: silhouette}).
    """
    n = len(x)
    k_max = min(int(k_max), n - 1)
    if k_max < 2:
        raise ValueError(f"cluster search needs k_max >= 2 and n >= 3 (n = {n})")
    scores = silhouette_curve(x, range(2, k_max + 1), seed, n_init, sample_size, groups)
    smoothed = smooth_curve(scores, smooth_window)
    best = max(smoothed.values())
    k_star = min(k for k, s in smoothed.items() if s == best)
    return k_star, scores


def qom_scores(
    hopkins: Sequence[float], cluster_errors: Sequence[float], c_offset: float = 1.0
) -> List[float]:
    """q_j = H_j / (c_j + c_offset), the project's guard against k*_j = K (section 3.4)."""
    return [float(h) / (float(c) + c_offset) for h, c in zip(hopkins, cluster_errors)]


def normalise_weights(q: Sequence[float]) -> List[float]:
    """beta_QoM = q / sum(q); uniform when every q is 0."""
    total = float(sum(q))
    if total <= 0:
        return [1.0 / len(q)] * len(q)
    return [float(v) / total for v in q]


def compute_qom(
    features: Dict[str, np.ndarray],
    num_classes: int,
    config: QoMConfig,
    seed: int = 0,
    groups: Optional[np.ndarray] = None,
) -> Dict:
    """QoM record for modalities in ``features`` order: H, k*, c, q, weights and the recipe used.

    ``groups`` are the subject ids of the rows (no labels); they are used when
    ``config.silhouette == "cross-subject"``.
    """
    modalities = list(features)
    record: Dict = {"modalities": modalities, "mode": config.mode, "num_classes": int(num_classes)}
    if config.mode not in QOM_MODES:
        raise ValueError(f"qom.mode must be one of {QOM_MODES}, got {config.mode!r}")
    if config.silhouette not in SILHOUETTES:
        raise ValueError(f"qom.silhouette must be one of {SILHOUETTES}, got {config.silhouette!r}")
    if config.mode == "uniform":
        record["weights"] = [1.0 / len(modalities)] * len(modalities)
        return record
    if config.mode == "fixed":
        if len(config.fixed_weights) != len(modalities):
            raise ValueError(f"qom.fixed_weights has {len(config.fixed_weights)} values for {modalities}")
        record["weights"] = normalise_weights(config.fixed_weights)
        return record
    hopkins, k_stars, errors, silhouettes = [], [], [], {}
    for index, modality in enumerate(modalities):
        reduced = reduce_features(features[modality], config.pca_dims, seed + index)
        k_max = config.k_max if config.k_max is not None else 2 * num_classes
        k_star, scores = best_cluster_count(
            reduced,
            k_max,
            seed + index,
            config.kmeans_n_init,
            config.silhouette_sample_size,
            groups if config.silhouette == "cross-subject" else None,
            config.smooth_window,
        )
        hopkins.append(hopkins_statistic(reduced, config.hopkins_repeats, seed + index))
        k_stars.append(int(k_star))
        errors.append(abs(int(k_star) - int(num_classes)))
        silhouettes[modality] = {str(k): s for k, s in scores.items()}
        logger.info("QoM %s: H=%.4f k*=%d c=%d", modality, hopkins[-1], k_star, errors[-1])
    q = qom_scores(hopkins, errors, config.c_offset)
    record.update(
        {
            "hopkins": hopkins,
            "k_star": k_stars,
            "cluster_error": errors,
            "q": q,
            "weights": normalise_weights(q),
            "silhouette": silhouettes,
            "recipe": {
                "features": config.features,
                "pca_dims": config.pca_dims,
                "k_max": config.k_max,
                "c_offset": config.c_offset,
                "hopkins_repeats": config.hopkins_repeats,
                "silhouette": config.silhouette if group_halves(groups) is not None else "plain",
                "smooth_window": config.smooth_window,
            },
        }
    )
    return record


def qom_weights_or_uniform(record: Optional[Dict], modalities: Sequence[str]) -> List[float]:
    """The weights stored in a QoM record, checked against the modality order; uniform if None."""
    if record is None:
        return [1.0 / len(modalities)] * len(modalities)
    if list(record["modalities"]) != list(modalities):
        raise ValueError(f"QoM record is for {record['modalities']}, model has {list(modalities)}")
    return [float(w) for w in record["weights"]]
