"""The model equals torchvision's EfficientNet in parameters, stage widths and repeats."""

import pytest
import torch
import torchvision

from scalesearch.net.model import build_model
from scalesearch.net.scaling import PRESETS, preset_spec, scale_network

# Exact torchvision parameter counts at 1000 classes (../shared/reference/efficientnet.md).
REFERENCE_PARAMS = {
    "b0": 5_288_548,
    "b1": 7_794_184,
    "b2": 9_109_994,
    "b3": 12_233_232,
    "b4": 19_341_616,
    "b5": 30_389_784,
    "b6": 43_040_704,
    "b7": 66_347_960,
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def torchvision_stages(model) -> list[tuple[int, int]]:
    """(out channels, repeats) of torchvision's features: stem, 7 stages, head."""
    features = model.features
    rows = [(features[0].out_channels, 1)]
    for stage in features[1:-1]:
        last_conv = [m for m in stage[-1].modules() if isinstance(m, torch.nn.Conv2d)][-1]
        rows.append((last_conv.out_channels, len(stage)))
    rows.append((features[-1].out_channels, 1))
    return rows


@pytest.mark.parametrize("name", list(PRESETS))
def test_matches_torchvision(name):
    ours = build_model(preset_spec(name), 1000)
    theirs = getattr(torchvision.models, f"efficientnet_{name}")(weights=None)
    assert n_params(ours) == n_params(theirs) == REFERENCE_PARAMS[name]
    spec = ours.spec
    our_stages = [(spec.stem_channels, 1)]
    our_stages += [(s.out_channels, s.repeats) for s in spec.stages]
    our_stages += [(spec.head_channels, 1)]
    assert our_stages == torchvision_stages(theirs)


@pytest.mark.parametrize("resolution", [16, 33, 64, 97, 224])
def test_forward_shapes(resolution):
    model = build_model(scale_network(0.5, 0.5, resolution), 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, resolution, resolution))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_block_structure():
    model = build_model(scale_network(), 10)
    blocks = list(model.blocks)
    assert len(blocks) == 16
    # residual only where stride 1 and in == out; stochastic depth ramps 0 .. 0.2 * 15/16
    # every block but the first of each stage is residual (stage 1 and 7 have one block each)
    assert [b.residual for b in blocks].count(True) == 16 - 7
    # stochastic depth ramps over the global block index: 0.2 * i / 16 (B0: 0.0 ... 0.1875)
    for index, block in enumerate(blocks):
        if block.residual:
            assert block.drop.rate == pytest.approx(0.2 * index / 16)
    # SE squeeze width from the block input: block 2 (input 16, expanded 96) squeezes to 4
    se = blocks[1].body[2]
    assert se.reduce.out_channels == 4 and se.reduce.in_channels == 96


def test_stochastic_depth_only_in_training():
    model = build_model(scale_network(0.5, 0.5, 32), 3)
    with torch.no_grad():  # the init zeroes residual branches and the classifier: undo that
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.Linear)):
                torch.nn.init.normal_(m.weight, 1.0, 0.1)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    b = model(x)
    assert not torch.equal(a, b)


def test_proxy_friendly_init_starts_residual_blocks_as_identity():
    from scalesearch.net.model import MBConv

    model = build_model(scale_network(0.5, 0.5, 32), 10)
    assert torch.count_nonzero(model.classifier.weight) == 0
    residual = [m for m in model.modules() if isinstance(m, MBConv) and m.residual]
    assert residual, "B0 has residual blocks"
    for block in residual:
        assert torch.count_nonzero(block.body[-1][1].weight) == 0
    model.eval()
    block = residual[0]
    x = torch.randn(2, block.body[0][0].in_channels, 8, 8)
    assert torch.equal(block(x), x)  # identity at init
