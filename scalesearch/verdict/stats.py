"""The statistics of a verdict: accuracies judged on the same images, both noise sources counted.

Model (a two-way crossed design, images x training seeds). Network j trained k_j times and judged
on the same n images gives a 0/1 matrix c_j of shape (k_j, n): seed s got image i right or not.
Its accuracy is the mean of c_j. An *estimate* is a weighted sum of networks' accuracies: weight
1 for a network at the budget, two weights summing to 1 for a linear interpolation between two
networks that bracket it, weights of both signs for a difference between two strategies. With
e_i = sum_j w_j mean_s c_j[s, i] (image i's seed-averaged, weighted score) its variance is

    seeds:  sum_j w_j^2 S^2 / k_j
    images: max(0, Var(e) - sum_j w_j^2 M / k_j) / n

- S^2 is the between-seed variance of one run's accuracy on these images (training noise as
  the user sees it: a seed moves the accuracy), pooled over every network trained twice or
  more (one recipe, one level of noise), with sum (k_j - 1) degrees of freedom. Where it is
  implausibly small it is raised to the 5th percentile of what the image-by-seed flips alone
  (M / n) would give: two seeds that happen to agree do not make training noise vanish.
- M is the image x seed interaction mean square, pooled the same way: how much a seed flips
  single images. Var(e) / n would count that part of seed noise a second time, so it is taken
  out; what is left is the sampling error of the evaluation images, the error that more images
  would shrink and more seeds would not. Two networks judged on the same images enter through
  the same e_i, so a difference is *paired* (McNemar's idea, generalised to means over seeds and
  to interpolations): images on which both are right or both wrong cost nothing.

Degrees of freedom: Welch-Satterthwaite over the two parts. The seed part has sum (k_j - 1). The
image part's come from the kurtosis of e (2 s^4 / Var(s^2)): when only m images differ between
two networks, e is mostly zeros and that is about 2 m, not n, so a difference of a few images is
judged with the few images it rests on. The test is two-sided at 5% on the t distribution;
`detectable` is the difference it would find with 80% power, (t_crit + 0.84) x standard error.

Pure functions of numpy arrays; scipy only for the t distribution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Imported with this module, not on first use: scipy.stats takes a second to import, and a
# Ctrl-C that lands inside a first import leaves it half-initialised for the export that
# follows the interrupt.
from scipy.stats import chi2, t

LEVEL = 0.05  # two-sided test level of every verdict
ROUNDING = 1e-15  # variances below this are float rounding of an exact zero
POWER_Z = 0.8416  # z of 80% power, for the detectable difference

Terms = Sequence[tuple[float, str]]  # (weight, network key)


@dataclass(frozen=True)
class SeedNoise:
    """Training-seed noise pooled over the networks trained more than once."""

    between: float  # S^2: between-seed variance of one run's accuracy
    interaction: float  # M: image x seed interaction mean square (0/1 scale)
    degrees_of_freedom: int  # sum of (seeds - 1) over the networks pooled
    images: int  # n, the evaluation images the networks were judged on

    @property
    def measured(self) -> bool:
        return self.degrees_of_freedom > 0

    @property
    def run_variance(self) -> float:
        """S^2, floored where it is implausibly small: below the 5th percentile of what the
        image x seed flips alone would give (M / n times chi2_0.05(dof) / dof). Seeds that
        agree by chance, or to the last image, do not make training noise vanish."""
        if not self.measured:
            return 0.0
        return max(self.between, _floor(self.degrees_of_freedom) * self.interaction / self.images)

    @property
    def seed_std(self) -> float:
        """Pooled seed standard deviation of accuracy, as the verdict uses it."""
        return math.sqrt(self.run_variance)


NO_NOISE = SeedNoise(0.0, 0.0, 0, 0)


@functools.lru_cache(maxsize=256)
def _floor(dof: int) -> float:
    """chi2_0.05(dof) / dof: the 5th percentile of a variance estimate over its mean."""
    return float(chi2.ppf(0.05, dof) / dof)


@dataclass(frozen=True)
class Estimate:
    """A weighted sum of accuracies with its standard error."""

    value: float
    standard_error: float
    degrees_of_freedom: float
    image_variance: float
    seed_variance: float

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the hypothesis that the true value is 0 (for differences)."""
        if self.standard_error <= 0:
            return 1.0 if self.value == 0 else 0.0
        return float(2 * t.sf(abs(self.value) / self.standard_error, self.degrees_of_freedom))

    @property
    def critical(self) -> float:
        """t_crit of the two-sided 5% test at this estimate's degrees of freedom."""
        return float(t.ppf(1 - LEVEL / 2, max(self.degrees_of_freedom, 1e-9)))

    @property
    def detectable(self) -> float:
        """The smallest true difference the test finds with 80% power."""
        return (self.critical + POWER_Z) * self.standard_error


def as_matrix(correct: np.ndarray | Sequence[Sequence[bool]]) -> np.ndarray:
    """(seeds, images) float64 0/1 matrix; a single vector is one seed."""
    matrix = np.asarray(correct, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(f"expected a (seeds, images) matrix, got shape {matrix.shape}")
    return matrix


def _seed_parts(matrix: np.ndarray) -> tuple[float, float]:
    """(S^2, MS_res) of one network's (k, n) matrix with k >= 2."""
    k, n = matrix.shape
    accuracy = matrix.mean(axis=1)  # (k,) per seed
    between = float(accuracy.var(ddof=1))
    per_image = matrix.mean(axis=0)  # (n,)
    residual = matrix - per_image[None, :] - accuracy[:, None] + matrix.mean()
    interaction = float((residual**2).sum() / ((k - 1) * (n - 1))) if n > 1 else 0.0
    # Rounding leaves ~1e-34 where seeds agree exactly; that is zero, not a tiny spread.
    return (between if between > ROUNDING else 0.0,
            interaction if interaction > ROUNDING else 0.0)


def seed_noise(networks: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> SeedNoise:
    """Pooled seed noise of the networks with two or more seeds (see the module docstring).

    All networks must have been judged on the same number of images."""
    matrices = networks.values() if isinstance(networks, Mapping) else networks
    between = interaction = 0.0
    dof = 0
    sizes = set()
    for correct in matrices:
        matrix = as_matrix(correct)
        k, n = matrix.shape
        sizes.add(n)
        if k < 2:
            continue
        s2, ms_res = _seed_parts(matrix)
        between += (k - 1) * s2
        interaction += (k - 1) * ms_res
        dof += k - 1
    if len(sizes) > 1:
        raise ValueError(f"networks judged on different numbers of images: {sorted(sizes)}")
    if dof == 0:
        return NO_NOISE
    return SeedNoise(between / dof, interaction / dof, dof, sizes.pop())


def _image_dof(scores: np.ndarray) -> float:
    """Degrees of freedom of the sample variance of `scores` from their kurtosis."""
    n = scores.shape[0]
    centred = scores - scores.mean()
    m2 = float((centred**2).mean())
    if n < 2 or m2 <= 0:
        return float(max(n - 1, 1))
    m4 = float((centred**4).mean())
    # Positive: m4 >= m2^2 makes it at least 2 m2^2 / (n (n - 1)). And as no n numbers have a
    # kurtosis m4 / m2^2 above n - 2 + 1 / (n - 1), the result is never below min(2, n - 1).
    var_of_var = (m4 - m2**2 * (n - 3) / (n - 1)) / n
    s2 = m2 * n / (n - 1)
    return float(min(n - 1, 2 * s2**2 / var_of_var))


def merge(terms: Terms) -> dict[str, float]:
    """Weights per network key, a network named twice counted once with both weights."""
    merged: dict[str, float] = {}
    for weight, key in terms:
        merged[key] = merged.get(key, 0.0) + float(weight)
    return {key: weight for key, weight in merged.items() if weight != 0.0}


def estimate(terms: Terms, networks: Mapping[str, np.ndarray], noise: SeedNoise) -> Estimate:
    """The weighted sum of the networks' accuracies named by `terms`, with its standard error.

    Every network must have been judged on the same images (same n, same order); without
    measured seed noise (`noise.measured` false) the seed part is left out."""
    weights = merge(terms)
    if not weights:
        return Estimate(0.0, 0.0, math.inf, 0.0, 0.0)
    matrices = {key: as_matrix(networks[key]) for key in weights}
    sizes = {m.shape[1] for m in matrices.values()}
    if len(sizes) != 1:
        raise ValueError(f"networks judged on different numbers of images: {sorted(sizes)}")
    n = sizes.pop()
    scores = sum(w * matrices[key].mean(axis=0) for key, w in weights.items())  # (n,)
    value = float(scores.mean())
    value = 0.0 if abs(value) < ROUNDING else value
    per_seed = sum(w**2 / matrices[key].shape[0] for key, w in weights.items())
    seed_var = noise.run_variance * per_seed  # 0 where the noise was not measured
    image_var = 0.0
    if n > 1:
        flips = noise.interaction * per_seed if noise.measured else 0.0
        spread = float(scores.var(ddof=1))
        image_var = max(0.0, (spread if spread > ROUNDING else 0.0) - flips) / n
    total = image_var + seed_var
    if total <= 0:
        return Estimate(value, 0.0, math.inf, 0.0, 0.0)
    parts = 0.0
    if image_var > 0:
        parts += image_var**2 / _image_dof(scores)
    if seed_var > 0:
        parts += seed_var**2 / noise.degrees_of_freedom
    return Estimate(value, math.sqrt(total), total**2 / parts, image_var, seed_var)


def difference(first: Terms, second: Terms, networks: Mapping[str, np.ndarray],
               noise: SeedNoise) -> Estimate:
    """`first` minus `second`, paired over the images both were judged on."""
    return estimate([*first, *((-w, key) for w, key in second)], networks, noise)


def interpolation_weights(ratios: Sequence[float], target: float) -> list[float]:
    """Weights of the two networks at cost ratios `ratios` (below and above `target`) that
    give the accuracy at `target`, linearly in log cost."""
    low, high = ratios
    if not low < target < high:
        raise ValueError(f"{target} is not between {low} and {high}")
    upper = (math.log(target) - math.log(low)) / (math.log(high) - math.log(low))
    return [1.0 - upper, upper]
