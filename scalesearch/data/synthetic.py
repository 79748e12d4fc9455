"""A procedural image data set of 13 classes, drawn at whatever resolution a network trains at.

Scenes, not images, are the data: each image's parameters are drawn once from the seed in
resolution-free units (positions and sizes as fractions of the side, frequencies in cycles per
image), and `render` draws them at any side from 16 to 2048 px the way a camera of that many
pixels would see them. Edges are soft coverage masks one *output* pixel wide; textures are sums
of sinusoids whose amplitude is multiplied by the response of a Gaussian pre-filter of
PREFILTER_SIGMA output pixels, exp(-2 pi^2 sigma^2 f^2) with f in cycles per output pixel, and
dropped above the Nyquist limit along either axis, so detail finer than a side can hold fades to
the mean colour instead of aliasing. Pixel noise (NOISE_STD levels) is drawn per (image, side):
a seed derived from the split, the image's index and the side picks the image's stretch of one
fixed Gaussian bank, so it is deterministic and cheap. A network trained at R px therefore sees
what the scene holds at R px, not what a stored copy kept.

Thirteen classes in three groups (GROUPS), every image a dark two-colour gradient background
with bright foreground objects (MIN_CONTRAST levels or more above it):

- texture (4 classes; built to reward resolution, with detail beyond the 2x resolution): a
  large disc filled with horizontal stripes, vertical stripes, a diagonal hatch or a square
  hatch, all of the same RMS contrast, so that blurred they are the same flat disc. The
  frequency is log-uniform over TEXTURE_CYCLES = 3..40 cycles per image: each octave of
  resolution unlocks the same share, and the finest stay out of reach of the default study's
  2x networks (the base at 36 px reads up to about 16 cycles, the resolution corner at 64 px
  about 29).
- pair (3 classes; built to reward depth: relations across the image): two equal small
  objects (disc, square or triangle) 0.4-0.62 of the side apart, in a row, a column or along
  a diagonal (+-10 degrees): only the direction between the two tells the classes apart.
- shape (6 classes; built to reward width: many varied classes): one triangle, square,
  diamond (the square turned 45 degrees), cross, saltire (the cross turned) or ring, upright
  but for up to 10 degrees, of log-uniform size (0.2-0.38 of the side) anywhere, in varied
  colours.

A known ceiling: LABEL_NOISE = 10% of the images of every split show a class drawn at random
instead of their label's, so no network can be right on more than CEILING = 90.8% of them
(label noise, stated; the proxy must not sit near 100%, where it can tell nothing). Every class
is invariant to horizontal flips and small shifts, so the usual augmentations keep labels
valid. Training images are fresh: the default proxy trains one epoch over the 10,000 images of
the training split.

Evidence, and what each group turned out to reward: README, "The synthetic data set" and
"The proxy recipe" (benchmarks/proxy_noise.py).
"""

# long: the docstring above (44 lines) holds the design; the code is 390.
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

# Bump whenever the scenes or their drawing change: cached files are named after it.
VERSION = 3
BASE_RESOLUTION = 36  # default proxy-training side, pixels (the default study's base)
MIN_SIDE, MAX_SIDE = 16, 2048  # sides the renderer draws
TEXTURES = ("stripes-horizontal", "stripes-vertical", "hatch-diagonal", "hatch-square")
PAIRS = ("pair-horizontal", "pair-vertical", "pair-diagonal")
# Shapes, upright (turned by up to ORIENTATION_JITTER).
SHAPES = ("triangle", "square", "diamond", "cross", "saltire", "ring")
CLASSES = tuple([*TEXTURES, *PAIRS, *(f"shape-{name}" for name in SHAPES)])
# Which dimension each group of classes is built to test (see the module docstring).
GROUPS = {"texture": tuple(range(len(TEXTURES))),
          "pair": tuple(range(len(TEXTURES), len(TEXTURES) + len(PAIRS))),
          "shape": tuple(range(len(TEXTURES) + len(PAIRS), len(CLASSES)))}
SPLIT_SIZES = {"train": 10000, "val": 5000, "test": 10000}  # images per split
# The share of images of every split whose scene is of a class drawn at random (possibly its
# own) instead of its label's: no network can be right on more than
# 1 - LABEL_NOISE * (classes - 1) / classes of them (CEILING).
LABEL_NOISE = 0.10
CEILING = 1 - LABEL_NOISE * (len(CLASSES) - 1) / len(CLASSES)

# Scene content, in resolution-free units: lengths are fractions of the image side,
# frequencies cycles per image.
TEXTURE_CYCLES = (3.0, 40.0)  # texture frequency, log-uniform (density 1/f): as many per octave
TEXTURE_RADIUS = (0.26, 0.4)  # radius of the textured disc
ORIENTATION_JITTER = 10.0  # degrees, either way, on every texture and pair direction
PAIR_RADIUS = (0.08, 0.13)  # radius of each object of a pair, log-uniform
PAIR_DISTANCE = (0.4, 0.62)  # centre-to-centre distance of a pair
SHAPE_RADIUS = (0.2, 0.38)  # outer radius of a single shape, log-uniform
MARGIN = 0.03  # objects stay this far inside the border
BACKGROUND_LEVEL = (10.0, 110.0)  # mean level of the background, uint8 scale: dark scenes
MIN_CONTRAST = 80.0  # least mean-level difference between an object and its background
NOISE_STD = 6.0  # pixel noise in uint8 levels, independent per pixel at every side

# Drawing.
PREFILTER_SIGMA = 0.5  # Gaussian pre-filter of textures, in output pixels (a camera's blur)
CHUNK_PIXELS = 64 * 64 * 128  # pixels drawn at once (per channel): bounds memory, fits caches
NOISE_BANK = 1 << 22  # values in the shared bank that per-image noise is cut from


def stream_seed(seed: int, split: str) -> int:
    """A 63-bit seed for one split; splits of one seed use unrelated random streams."""
    digest = hashlib.sha256(f"scalesearch-synthetic-v{VERSION}-{seed}-{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def noise_seed(split_seed: int, index: int, side: int) -> int:
    """A 63-bit seed for the pixel noise of image ``index`` of a split drawn at ``side`` px.

    splitmix64 of the three numbers: every (image, side) gets its own noise, and the same
    one in every process.
    """
    value = split_seed
    for word in (index, side):
        value = (value ^ word) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
        value = value * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 29
    return value >> 1


# ---------------------------------------------------------------------------------------------
# Scenes: parameters only, drawn once per image from the seed, the same at every side.


@dataclass
class Scenes:
    """The scenes of one split: labels (n,) and named per-image parameters, (n,) or (n, k).

    Every parameter is drawn for every image (an image uses those of its own family), in a
    fixed order from the split's stream, so a scene never depends on the side it is drawn at.
    """

    labels: torch.Tensor
    params: dict[str, torch.Tensor]
    split_seed: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def draw_scenes(seed: int, split: str, size: int) -> Scenes:
    """The scenes of one split: ``size`` images, as many of each class as can be (the first
    ``size % classes`` classes have one more), shuffled."""
    num_classes = len(CLASSES)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a whole number above 0, got {size!r}")
    split_seed = stream_seed(seed, split)
    gen = torch.Generator().manual_seed(split_seed)
    labels = torch.arange(size) % num_classes
    labels = labels[torch.randperm(size, generator=gen)]
    n = size

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=gen)

    def log_uniform(low: float, high: float) -> torch.Tensor:
        return low * (high / low) ** torch.rand(n, generator=gen)

    p: dict[str, torch.Tensor] = {}
    # the class the scene shows: its label's, but a random one (LABEL_NOISE) for a few images
    random_class = torch.randint(0, num_classes, (n,), generator=gen)
    p["shown"] = torch.where(torch.rand(n, generator=gen) < LABEL_NOISE, random_class, labels)
    # background: a dark two-colour linear gradient around a mean level
    p["level"] = uniform(*BACKGROUND_LEVEL)
    p["ends"] = (p["level"][:, None, None] + uniform(-30, 30, 3, 2)).clamp(0, 255)  # (n, 3, 2)
    p["ramp_angle"] = uniform(0, 2 * math.pi)
    # object colour (pairs and shapes), brighter than the background by MIN_CONTRAST or more
    least = p["level"] + MIN_CONTRAST
    p["colour"] = _colour(uniform(-60, 60, 3), least + uniform(0, 1) * (235 - least))
    # texture colours: a mean a little less bright, so that the swing has room on both sides
    mean = _colour(uniform(-60, 60, 3), p["level"] + uniform(MIN_CONTRAST - 10, MIN_CONTRAST + 40))
    p["texture_mean"] = mean
    p["texture_swing"] = torch.minimum(uniform(50, 90, 3), torch.minimum(mean, 255 - mean))
    # texture disc
    p["disc_radius"] = uniform(*TEXTURE_RADIUS)
    p["disc_centre"] = 0.5 + uniform(-1, 1, 2) * (0.5 - p["disc_radius"][:, None] - MARGIN)
    p["cycles"] = log_uniform(*TEXTURE_CYCLES)
    p["texture_angle"] = torch.deg2rad(uniform(-ORIENTATION_JITTER, ORIENTATION_JITTER))
    p["texture_phase"] = uniform(0, 2 * math.pi, 2)
    # pair: two equal small shapes (disc, square or triangle), one direction apart
    p["pair_radius"] = log_uniform(*PAIR_RADIUS)
    p["pair_kind"] = torch.randint(0, 3, (n,), generator=gen)
    p["pair_distance"] = uniform(*PAIR_DISTANCE)
    p["pair_sign"] = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1  # diagonal's way
    p["pair_jitter"] = torch.deg2rad(uniform(-ORIENTATION_JITTER, ORIENTATION_JITTER))
    p["pair_place"] = uniform(-1, 1, 2)  # midpoint, as a share of the room left
    # single shape
    p["shape_radius"] = log_uniform(*SHAPE_RADIUS)
    p["shape_centre"] = 0.5 + uniform(-1, 1, 2) * (0.5 - p["shape_radius"][:, None] - MARGIN)
    p["shape_angle"] = torch.deg2rad(uniform(-ORIENTATION_JITTER, ORIENTATION_JITTER))
    p["cross_arm"] = uniform(0.26, 0.36)  # half-width of the cross arms, share of the radius
    p["ring_inner"] = uniform(0.45, 0.62)  # inner radius of the ring, share of the radius
    return Scenes(labels, p, split_seed)


def _colour(hue: torch.Tensor, brightness: torch.Tensor) -> torch.Tensor:
    """(n, 3) colours of the tints ``hue`` (n, 3) shifted to mean level ``brightness`` (n,)
    (before clipping to 0..255): colours vary freely, their brightness is set."""
    return (hue + (brightness - hue.mean(1))[:, None]).clamp(0, 255)


# ---------------------------------------------------------------------------------------------
# Rendering: the scenes at one side, antialiased for that side.


def render(scenes: Scenes, side: int, noise: bool = True) -> torch.Tensor:
    """Images (n, 3, side, side) uint8 of ``scenes`` drawn at ``side`` px.

    Coverage edges are one output pixel wide, textures are band-limited for this side, and
    pixel noise (``noise``) is drawn per (image, side) from ``noise_seed``. Images are drawn
    in blocks of one kind (class, and shape for pairs), so every block runs one program.
    """
    if isinstance(side, bool) or not isinstance(side, int) or not MIN_SIDE <= side <= MAX_SIDE:
        raise ValueError(f"side must be a whole number of pixels in [{MIN_SIDE}, {MAX_SIDE}]")
    n = len(scenes)
    shown = scenes.params["shown"]
    is_pair = torch.isin(shown, torch.tensor(GROUPS["pair"]))
    key = shown * 3 + torch.where(is_pair, scenes.params["pair_kind"], 0)
    order = torch.argsort(key, stable=True)  # images grouped by kind, index order within
    keys = key[order]
    images = torch.empty(n, 3, side, side, dtype=torch.uint8)
    chunk = max(1, CHUNK_PIXELS // (side * side))
    bank = _noise_bank() if noise else None
    axis = torch.arange(side, dtype=torch.float32) + 0.5
    grid = axis[None, None, :], axis[None, :, None]  # x (1, 1, W), y (1, H, 1), in pixels
    bounds = torch.cat([torch.tensor([0]), torch.nonzero(keys[1:] != keys[:-1])[:, 0] + 1,
                        torch.tensor([n])]).tolist()
    for low, high in zip(bounds[:-1], bounds[1:]):
        label = int(keys[low]) // 3
        for start in range(low, high, chunk):
            stop = min(start + chunk, high)
            index = order[start:stop]
            part = {name: value[index] for name, value in scenes.params.items()}
            canvas = _draw(label, part, side, *grid)
            if bank is not None:
                _add_noise(canvas, bank, scenes.split_seed, index.tolist(), side)
            else:
                canvas += 0.5  # the noise bank carries the rounding offset
            # clamp, then the cast truncates: with the +0.5 above it rounds
            images.index_copy_(0, index, canvas.clamp_(0, 255).to(torch.uint8))
    return images


def generate_split(
    seed: int, split: str, size: int, side: int = BASE_RESOLUTION
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one split at ``side`` px: images (size, 3, side, side) uint8, labels (size,)."""
    scenes = draw_scenes(seed, split, size)
    return render(scenes, side), scenes.labels


def generate(
    seed: int = 0, sizes: dict[str, int] | None = None, side: int = BASE_RESOLUTION
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Draw every split at ``side`` px: ``{"train": (images, labels), "val": ..., ...}``."""
    sizes = SPLIT_SIZES if sizes is None else sizes
    with one_thread():
        return {split: generate_split(seed, split, n, side) for split, n in sizes.items()}


class one_thread:
    """Run torch on one thread inside the block. The ops are small (one chunk), and on a
    2-core machine shared with other processes two OpenMP threads spin against each other
    (measured: 38 s instead of 3.8 s to draw 6000 images at 80 px). Element-wise ops give the
    same bytes with any number of threads."""

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)


_bank: torch.Tensor | None = None


def _noise_bank() -> torch.Tensor:
    """NOISE_BANK Gaussian values (std NOISE_STD, plus the 0.5 that makes the cast round),
    the same in every process; an image's noise is a stretch of it at a seeded offset."""
    global _bank
    if _bank is None:
        gen = torch.Generator().manual_seed(stream_seed(0, "noise-bank"))
        _bank = torch.randn(NOISE_BANK, generator=gen).mul_(NOISE_STD).add_(0.5)
    return _bank


def _add_noise(canvas: torch.Tensor, bank: torch.Tensor, split_seed: int, indices: list[int],
               side: int) -> None:
    """Add to canvas (c, 3, side, side), in place, the noise of images ``indices`` of a split."""
    length = 3 * side * side
    seeds = [noise_seed(split_seed, index, side) for index in indices]
    room = bank.shape[0] - length + 1
    for image, seed in zip(canvas, seeds):
        if length * 2 <= bank.shape[0]:
            image += bank[seed % room : seed % room + length].view_as(image)
        else:  # sides above ~830 px: too long for the bank, drawn on their own
            gen = torch.Generator().manual_seed(seed)
            image += torch.randn(3, side, side, generator=gen).mul_(NOISE_STD).add_(0.5)


# The helpers below draw a block of images of one kind: per-image parameters of shape
# (c, 1, 1) broadcast against pixel-centre coordinates x (1, 1, W) and y (1, H, 1), in pixels.


def _col(values: torch.Tensor) -> torch.Tensor:
    return values[:, None, None]


def _cover(distance: torch.Tensor) -> torch.Tensor:
    """Soft inside mask, in place, from a signed distance in output pixels (negative inside):
    the edge ramps over one pixel, as the share of a pixel a straight edge covers does."""
    return distance.neg_().add_(0.5).clamp_(0.0, 1.0)


def _draw(label: int, p: dict[str, torch.Tensor], side: int, x: torch.Tensor,
          y: torch.Tensor) -> torch.Tensor:
    """Float images (c, 3, side, side), 0..255 scale, of scenes of class ``label``, no noise."""
    # Background: a two-colour gradient along ramp_angle, 0 to 1 across the image.
    cos, sin = _col(torch.cos(p["ramp_angle"]) / side), _col(torch.sin(p["ramp_angle"]) / side)
    ramp = ((x - side / 2) * cos + ((y - side / 2) * sin + 0.5)).clamp_(0, 1)  # (c, H, W)
    start, stop = p["ends"][..., 0, None, None], p["ends"][..., 1, None, None]  # (c, 3, 1, 1)
    canvas = torch.addcmul(start, stop - start, ramp[:, None])  # (c, 3, H, W)
    pairs = GROUPS["pair"][0]
    if label < pairs:
        mask, colour = _texture(label, p, side, x, y)
    elif label < GROUPS["shape"][0]:
        mask, colour = _pair(label - pairs, p, side, x, y)
    else:
        mask, colour = _shape(SHAPES[label - GROUPS["shape"][0]], p, side, x, y)
    return canvas.lerp_(colour.expand_as(canvas), mask[:, None])


def _texture(kind: int, p: dict[str, torch.Tensor], side: int, x: torch.Tensor,
             y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask (c, H, W) and colour (c, 3, H, W) of textured discs.

    kind: 0 horizontal stripes, 1 vertical stripes, 2 diagonal hatch (both diagonals), 3 square
    hatch (horizontal and vertical at once). Each is a sum of one or two sinusoids of
    ``cycles`` per image, each scaled by the Gaussian pre-filter's response at its frequency
    in cycles per output pixel and dropped above the Nyquist limit along either axis: detail
    finer than the side can hold fades to the mean colour instead of aliasing.
    """
    radius = _col(p["disc_radius"]) * side
    cx, cy = _col(p["disc_centre"][:, 0]) * side, _col(p["disc_centre"][:, 1]) * side
    mask = _cover(torch.sqrt((x - cx) ** 2 + (y - cy) ** 2).sub_(radius))
    angles = ((90.0,), (0.0,), (45.0, 135.0), (0.0, 90.0))[kind]  # of the wave vectors
    weight = math.sqrt(1 / len(angles))  # the same RMS contrast for one or two components
    cycles_per_pixel = p["cycles"] / side
    gain = weight * torch.exp(-2 * math.pi**2 * PREFILTER_SIGMA**2 * cycles_per_pixel**2)
    wave = None
    for angle, phase in zip(angles, (p["texture_phase"][:, 0], p["texture_phase"][:, 1])):
        theta = math.radians(angle) + p["texture_angle"]
        fx, fy = cycles_per_pixel * torch.cos(theta), cycles_per_pixel * torch.sin(theta)
        kept = torch.where(torch.maximum(fx.abs(), fy.abs()) < 0.5, gain, 0.0)
        # sin(a + b) = sin a cos b + cos a sin b: two outer products instead of a sine per pixel
        a = 2 * math.pi * _col(fx) * x + _col(phase)  # (c, 1, W)
        b = 2 * math.pi * _col(fy) * y  # (c, H, 1)
        term = torch.addcmul(torch.sin(a) * _col(kept) * torch.cos(b),
                             torch.cos(a) * _col(kept), torch.sin(b))
        wave = term if wave is None else wave.add_(term)
    mean, swing = p["texture_mean"][:, :, None, None], p["texture_swing"][:, :, None, None]
    return mask, torch.addcmul(mean, swing, wave[:, None])


def _pair(kind: int, p: dict[str, torch.Tensor], side: int, x: torch.Tensor,
          y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and colour of two equal small objects; kind: 0 row, 1 column, 2 diagonal.

    The direction from one object to the other is 0, 90 or +-45 degrees plus up to
    ORIENTATION_JITTER either way: the classes differ only in that direction, which a network
    sees only by relating two objects a third to a half of the image apart. The objects are
    discs, squares or up-pointing triangles (``pair_kind``, the same for a whole block).
    """
    radius = p["pair_radius"]
    base = math.radians((0.0, 90.0, 45.0)[kind])
    angle = (p["pair_sign"] * base if kind == 2 else base) + p["pair_jitter"]
    dx, dy = p["pair_distance"] * torch.cos(angle), p["pair_distance"] * torch.sin(angle)
    room = 0.5 - radius - MARGIN
    mx = 0.5 + p["pair_place"][:, 0] * (room - dx.abs() / 2).clamp(min=0)
    my = 0.5 + p["pair_place"][:, 1] * (room - dy.abs() / 2).clamp(min=0)
    r = _col(radius) * side
    shape = int(p["pair_kind"][0])
    distances = []
    for sign in (-1, 1):
        px = x - _col(mx + sign * dx / 2) * side  # (c, 1, W)
        py = y - _col(my + sign * dy / 2) * side  # (c, H, 1)
        if shape == 0:  # disc
            distance = torch.sqrt(px * px + py * py).sub_(r)
        elif shape == 1:  # axis-aligned square
            distance = torch.maximum(px.abs(), py.abs()).sub_(r * 0.85)
        else:  # triangle: the largest edge half-plane distance, exact near the edges
            distance = torch.maximum(py, 0.866 * px.abs() - 0.5 * py).sub_(r * 0.5)
        distances.append(distance)
    return _cover(torch.minimum(*distances)), p["colour"][:, :, None, None]


def _shape(name: str, p: dict[str, torch.Tensor], side: int, x: torch.Tensor,
           y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and colour of one shape ``name`` (of SHAPES) of outer radius ``shape_radius``,
    upright but for a small turn (``shape_angle``)."""
    radius = _col(p["shape_radius"]) * side
    cx, cy = _col(p["shape_centre"][:, 0]) * side, _col(p["shape_centre"][:, 1]) * side
    colour = p["colour"][:, :, None, None]
    dx, dy = x - cx, y - cy  # (c, 1, W), (c, H, 1)
    if name == "ring":  # rotation does not matter
        dist = torch.sqrt(dx * dx + dy * dy)
        inner = radius * _col(p["ring_inner"])
        return _cover(torch.maximum(dist - radius, inner - dist)), colour
    turn = {"diamond": math.pi / 4, "saltire": math.pi / 4}.get(name, 0.0)
    angle = _col(p["shape_angle"]) + turn
    cos, sin = torch.cos(angle), torch.sin(angle)
    u = dx * cos + dy * sin  # rotated coordinates around the centre, (c, H, W)
    v = dy * cos - dx * sin
    if name == "triangle":  # pointing up: a vertex on the negative v axis (y grows downwards)
        return _cover(_polygon(v, u, 3, radius)), colour
    if name in ("square", "diamond"):  # corners at the radius
        return _cover(torch.maximum(u.abs(), v.abs()) - radius * math.sqrt(0.5)), colour
    arm = radius * _col(p["cross_arm"])  # cross and saltire: two bars of half-width arm
    au, av = u.abs(), v.abs()
    return _cover(torch.minimum(torch.maximum(au - radius, av - arm),
                                torch.maximum(av - radius, au - arm))), colour


def _polygon(u: torch.Tensor, v: torch.Tensor, sides: int, radius: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels, negative inside; exact near the edges) to a regular polygon of
    ``sides`` sides and circumradius ``radius``, a vertex on the negative u axis."""
    inradius = radius * math.cos(math.pi / sides)
    distance = None
    for k in range(sides):
        theta = 2 * math.pi * k / sides
        edge = u * math.cos(theta) + v * math.sin(theta)
        distance = edge if distance is None else torch.maximum(distance, edge)
    return distance - inradius
