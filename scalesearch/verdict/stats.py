"""The statistics of a verdict: accuracies judged on the same images, both noise sources counted,
each network with the seed noise of its own runs.

Model (a two-way crossed design, images x training seeds). Network j trained k_j times and judged
on the same n images gives a 0/1 matrix c_j of shape (k_j, n): seed s got image i right or not.
Its accuracy is the mean of c_j. An *estimate* is a weighted sum of networks' accuracies: weight
1 for a network at the budget, two weights summing to 1 for a linear interpolation between two
networks that bracket it, weights of both signs for a difference between two strategies. With
e_i = sum_j w_j mean_s c_j[s, i] (image i's seed-averaged, weighted score) its variance is

    seeds:  sum_j w_j^2 S_j^2 / k_j
    images: max(0, Var(e) - sum_j w_j^2 M_j / k_j) / n

- S_j^2 is the between-seed variance of one run's accuracy of network j on these images
  (training noise as the user sees it: a seed moves the accuracy), from network j's own runs,
  with k_j - 1 degrees of freedom. It is not pooled over networks: short trainings are not one
  level of noise (one network's seeds can land on either side of a learning transition, 20
  points apart, while another's agree to half a point), and a pooled value makes the compared
  pair look quieter or noisier than it is. S_j^2 is never taken below M_j / n, the variance
  that network j's image-by-seed flips alone give a run's accuracy: a run's variance is that
  plus whatever a seed moves the whole run, so a smaller S_j^2 is sampling luck (two seeds
  that happen to agree do not make training noise vanish). A network trained once has no noise
  of its own; it takes a *fallback* (the pooled noise of the networks that do, `seed_noise`),
  which describes the search's single runs but never decides a verdict
  (`scalesearch.verdict.decision` requires two runs of every network it compares).
- M_j is network j's image x seed interaction mean square: how much a seed flips single
  images. Var(e) / n would count that part of seed noise a second time, so it is taken out;
  what is left is the sampling error of the evaluation images, the error that more images
  would shrink and more seeds would not. Two networks judged on the same images enter through
  the same e_i, so a difference is *paired* (McNemar's idea, generalised to means over seeds and
  to interpolations): images on which both are right or both wrong cost nothing.

Degrees of freedom: Welch-Satterthwaite over the parts, each network's seed part with k_j - 1.
The image part's come from the kurtosis of e (2 s^4 / Var(s^2)): when only m images differ
between two networks, e is mostly zeros and that is about 2 m, not n, so a difference of a few
images is judged with the few images it rests on. Intervals and tests use the t distribution;
`detectable` is the difference a two-sided 5% test finds with 80% power,
(t_crit + 0.84) x standard error.

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
from scipy.stats import t

LEVEL = 0.05  # two-sided level of every interval and test (2.5% on each side)
ROUNDING = 1e-15  # variances below this are float rounding of an exact zero
POWER_Z = 0.8416  # z of 80% power, for the detectable difference

Terms = Sequence[tuple[float, str]]  # (weight, network key)


@dataclass(frozen=True)
class SeedNoise:
    """Training-seed noise of one network, or pooled over several (`seed_noise`)."""

    between: float  # S^2: between-seed variance of one run's accuracy
    interaction: float  # M: image x seed interaction mean square (0/1 scale)
    degrees_of_freedom: int  # seeds - 1, summed over the networks pooled
    images: int  # n, the evaluation images the networks were judged on

    @property
    def measured(self) -> bool:
        return self.degrees_of_freedom > 0

    @property
    def run_variance(self) -> float:
        """S^2, but never below M / n: the image x seed flips alone give a run's accuracy that
        variance, and a run's true variance is that plus the seed's shift of the whole run.
        Seeds that agree by chance, or to the last image, do not make training noise vanish."""
        if not self.measured:
            return 0.0
        return max(self.between, self.interaction / self.images)

    @property
    def seed_std(self) -> float:
        """Seed standard deviation of accuracy, as the verdict uses it."""
        return math.sqrt(self.run_variance)


NO_NOISE = SeedNoise(0.0, 0.0, 0, 0)


@functools.lru_cache(maxsize=4096)
def critical(dof: float, level: float = LEVEL) -> float:
    """t quantile of a two-sided test at `level` (one side: level / 2)."""
    return float(t.ppf(1 - level / 2, max(dof, 1e-9)))


@dataclass(frozen=True)
class Estimate:
    """A weighted sum of accuracies with its standard error.

    ``seed_parts`` keeps, per network, (w^2 S^2, runs): its seed part is w^2 S^2 / runs, with
    runs - 1 degrees of freedom (a network that took the fallback noise has the fallback's
    degrees of freedom + 1 as its runs). `with_seeds` and `with_images` use them to say what
    more runs or more images would give."""

    value: float
    standard_error: float
    degrees_of_freedom: float
    image_variance: float
    seed_variance: float
    seed_parts: tuple[tuple[float, int, int], ...] = ()  # (w^2 S^2, runs, dof) per network
    image_dof: float = math.inf

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the hypothesis that the true value is 0 (for differences)."""
        if self.standard_error <= 0:
            return 1.0 if self.value == 0 else 0.0
        return float(2 * t.sf(abs(self.value) / self.standard_error, self.degrees_of_freedom))

    def p_above(self, bound: float = 0.0) -> float:
        """One-sided p-value of the hypothesis that the true value is at most `bound` (small
        when the estimate is clearly above it)."""
        if self.standard_error <= 0:
            return 0.0 if self.value > bound else 1.0
        return float(t.sf((self.value - bound) / self.standard_error, self.degrees_of_freedom))

    def p_below(self, bound: float = 0.0) -> float:
        """One-sided p-value of the hypothesis that the true value is at least `bound`."""
        if self.standard_error <= 0:
            return 0.0 if self.value < bound else 1.0
        return float(t.cdf((self.value - bound) / self.standard_error,
                           self.degrees_of_freedom))

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """The two-sided (1 - level) confidence interval, t distribution."""
        half = critical(self.degrees_of_freedom, level) * self.standard_error
        return self.value - half, self.value + half

    @property
    def critical(self) -> float:
        """t_crit of the two-sided 5% test at this estimate's degrees of freedom."""
        return critical(self.degrees_of_freedom)

    @property
    def detectable(self) -> float:
        """The smallest true difference the two-sided 5% test finds with 80% power."""
        return (self.critical + POWER_Z) * self.standard_error

    def with_seeds(self, runs: int) -> Estimate:
        """The same estimate had every network been trained at least `runs` times, with the
        noise measured now (seed parts shrink as 1 / runs, and gain degrees of freedom)."""
        parts = tuple((v, max(k, runs), max(d, runs - 1)) for v, k, d in self.seed_parts)
        return _combine(self.value, self.image_variance, self.image_dof, parts)

    def with_images(self, factor: float) -> Estimate:
        """The same estimate judged on `factor` times as many images of the same kind."""
        return _combine(self.value, self.image_variance / factor, self.image_dof * factor,
                        self.seed_parts)


def _combine(value: float, image_var: float, image_dof: float,
             seed_parts: tuple[tuple[float, int, int], ...]) -> Estimate:
    """An estimate from its parts: the variance sum and Welch-Satterthwaite degrees of
    freedom over the image part and each network's seed part."""
    seed_var = sum(v / k for v, k, _ in seed_parts)
    total = image_var + seed_var
    if total <= 0:  # nothing varies: no error, whatever more runs or images would do
        return Estimate(value, 0.0, math.inf, 0.0, 0.0)
    parts = image_var**2 / image_dof if image_var > 0 else 0.0
    parts += sum((v / k) ** 2 / d for v, k, d in seed_parts if v > 0)
    dof = total**2 / parts if parts > 0 else math.inf
    return Estimate(value, math.sqrt(total), dof, image_var, seed_var, seed_parts, image_dof)


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


def network_noise(correct: np.ndarray) -> SeedNoise:
    """The seed noise of one network from its own runs (NO_NOISE-like, 0 degrees of freedom,
    for a network trained once)."""
    matrix = as_matrix(correct)
    k, n = matrix.shape
    if k < 2:
        return SeedNoise(0.0, 0.0, 0, n)
    between, interaction = _seed_parts(matrix)
    return SeedNoise(between, interaction, k - 1, n)


def seed_noise(networks: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> SeedNoise:
    """Seed noise pooled over the networks with two or more seeds: a description of a study's
    noise as a whole, and the fallback for networks trained once (see the module docstring).

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


def estimate(terms: Terms, networks: Mapping[str, np.ndarray],
             fallback: SeedNoise = NO_NOISE) -> Estimate:
    """The weighted sum of the networks' accuracies named by `terms`, with its standard error.

    Each network's seed noise is its own (`network_noise`); a network trained once takes
    `fallback` (without measured noise there, its seed part is left out). Every network must
    have been judged on the same images (same n, same order)."""
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
    seed_parts, flips = [], 0.0
    for key, w in weights.items():
        k = matrices[key].shape[0]
        noise = network_noise(matrices[key]) if k > 1 else fallback
        if noise.measured:
            flips += w**2 * noise.interaction / k
            seed_parts.append((w**2 * noise.run_variance, k, noise.degrees_of_freedom))
    image_var, image_dof = 0.0, math.inf
    if n > 1:
        spread = float(scores.var(ddof=1))
        image_var = max(0.0, (spread if spread > ROUNDING else 0.0) - flips) / n
        if image_var > 0:
            image_dof = _image_dof(scores)
    return _combine(value, image_var, image_dof, tuple(seed_parts))


def difference(first: Terms, second: Terms, networks: Mapping[str, np.ndarray],
               fallback: SeedNoise = NO_NOISE) -> Estimate:
    """`first` minus `second`, paired over the images both were judged on."""
    return estimate([*first, *((-w, key) for w, key in second)], networks, fallback)


def runs_for(target: float, estimates: Sequence[Estimate], most: int = 1000) -> int | None:
    """The fewest runs per network that bring every estimate's detectable difference to
    `target` or below, with the noise measured now; None when more runs cannot (the image
    part alone is too large) or it takes more than `most`."""
    if not estimates:
        return None
    low = max(max((k for _, k, _ in e.seed_parts), default=1) for e in estimates)
    if all(e.detectable <= target for e in estimates):
        return low
    if any(e.with_seeds(most).detectable > target for e in estimates):
        return None
    high = most
    while high - low > 1:  # detectable shrinks as runs grow: bisect
        mid = (low + high) // 2
        if all(e.with_seeds(mid).detectable <= target for e in estimates):
            high = mid
        else:
            low = mid
    return high


def images_for(target: float, estimates: Sequence[Estimate], most: float = 1000.0
               ) -> float | None:
    """The factor on the evaluation images that, with the runs there are, brings every
    estimate's detectable difference to `target` or below; None beyond `most` (seed noise
    alone is too large)."""
    if not estimates:
        return None
    if all(e.detectable <= target for e in estimates):
        return 1.0
    if any(e.with_images(most).detectable > target for e in estimates):
        return None
    low, high = 1.0, most
    while high / low > 1.01:
        mid = math.sqrt(low * high)
        if all(e.with_images(mid).detectable <= target for e in estimates):
            high = mid
        else:
            low = mid
    return high


def interpolation_weights(ratios: Sequence[float], target: float) -> list[float]:
    """Weights of the two networks at cost ratios `ratios` (below and above `target`) that
    give the accuracy at `target`, linearly in log cost."""
    low, high = ratios
    if not low < target < high:
        raise ValueError(f"{target} is not between {low} and {high}")
    upper = (math.log(target) - math.log(low)) / (math.log(high) - math.log(low))
    return [1.0 - upper, upper]
