"""The trainer on tiny networks and tiny, trivially separable data sets (CPU; CUDA when present)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import scalesearch.train.resident as resident
import scalesearch.train.trainer as train
from scalesearch.data.dataset import ImageDataset, Split
from scalesearch.errors import BadInput
from scalesearch.net.scaling import scale_network
from scalesearch.train.config import TrainConfig, resolve_device
from scalesearch.train.optim import lr_factor
from scalesearch.train.trainer import train_model

SPEC = scale_network(0.25, 0.25, 32)  # about 0.1 M parameters
COLOURS = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200]])


def colour_split(n: int, seed: int) -> Split:
    """Class c is a noisy solid colour COLOURS[c]: separable by the mean colour alone."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    noise = torch.randint(-30, 31, (n, 3, 32, 32), generator=gen)
    images = (COLOURS[labels][:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)
    return Split(images, labels)


def colours(train_size: int = 192) -> ImageDataset:
    return ImageDataset("colours", ["red", "green", "blue"], colour_split(train_size, 1),
                        colour_split(60, 2), colour_split(45, 3), base_resolution=32)


DATA = colours()


def config(**changes) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 32, "device": "cpu"}
    return TrainConfig(**{**base, **changes})


def test_short_training_learns_an_easy_task():
    result = train_model(SPEC, DATA, config(epochs=3))
    assert result.state == "complete" and result.error is None
    assert result.val_accuracy > 0.9  # chance is 1/3
    assert result.epochs == 3
    assert math.isfinite(result.loss) and result.loss < math.log(3)
    assert result.images_per_second > 0 and result.seconds > 0
    assert result.peak_memory_bytes > 0
    assert result.test_accuracy is None


def test_rmsprop_and_no_augmentation_also_train():
    result = train_model(SPEC, DATA, config(epochs=3, optimizer="rmsprop", augment=False))
    assert result.state == "complete"
    assert result.val_accuracy > 0.6


def test_same_seed_gives_identical_results_in_one_process():
    a = train_model(SPEC, DATA, config(seed=3))
    b = train_model(SPEC, DATA, config(seed=3))
    assert (a.val_accuracy, a.loss) == (b.val_accuracy, b.loss)
    c = train_model(SPEC, DATA, config(seed=4))
    assert c.loss != a.loss


RUN_IN_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import test_train as t
r = t.train_model(t.SPEC, t.DATA, t.config(seed=3))
print(json.dumps([r.val_accuracy, r.loss]))
"""


def test_same_seed_gives_identical_results_across_processes():
    here = train_model(SPEC, DATA, config(seed=3))
    code = RUN_IN_CHILD.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert [here.val_accuracy, here.loss] == there  # JSON round-trips floats exactly


def test_huge_learning_rate_is_reported_as_divergence():
    result = train_model(SPEC, DATA, config(lr=1e6, clip=None))
    assert result.state == "failed"
    assert result.error.startswith("diverged at epoch 1 step ")
    assert result.val_accuracy is None and result.loss is None
    # a clipped gradient only delays it
    clipped = train_model(SPEC, DATA, config(lr=1e6))
    assert clipped.state == "failed" and clipped.error.startswith("diverged at epoch ")


def test_divergence_names_the_exact_step(monkeypatch):
    # A model whose 8th training forward returns NaN: step 8 is in epoch 2 (6 steps each).
    build = train.build_model

    def poisoned(spec, num_classes):
        model = build(spec, num_classes)
        calls = {"n": 0}

        def hook(module, inputs, output):
            if module.training:
                calls["n"] += 1
                if calls["n"] == 8:
                    return output * float("nan")
            return output

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(train, "build_model", poisoned)
    epochs = []
    result = train_model(SPEC, DATA, config(epochs=3), on_epoch=lambda e, a: epochs.append(e))
    assert result.state == "failed"
    assert result.error == "diverged at epoch 2 step 8 (loss nan)"
    assert result.epochs == 1 and epochs == [1]


def test_out_of_memory_is_reported_with_batch_size_and_resolution(monkeypatch):
    def out_of_memory(self, indices):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    monkeypatch.setattr(train.Trainer, "step", out_of_memory)
    result = train_model(SPEC, DATA, config())
    assert result.state == "failed"
    assert result.error == (
        "out of GPU memory at batch size 32 and resolution 32 px; lower --batch-size"
    )


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(BadInput, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cuda_without_a_gpu_is_bad_input(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BadInput, match="needs a CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(BadInput, match="needs a CUDA GPU"):
        train_model(SPEC, DATA, config(device="cuda"))
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": 0}, "epochs must be"),
        ({"batch_size": 0}, "batch size must be"),
        ({"batch_size": 1}, "batch size must be"),
        ({"batch_size": 500}, "batch size 500 is larger than the training split"),
        ({"optimizer": "adam"}, "unknown optimizer 'adam'"),
        ({"lr": -1.0}, "learning rate must be"),
        ({"lr": float("nan")}, "learning rate must be"),
        ({"label_smoothing": 1.0}, "label smoothing must be"),
        ({"warmup": -0.1}, "warm-up must be a share of the steps"),
        ({"warmup": 1.0}, "warm-up must be a share of the steps"),
        ({"ema": 1.0}, "ema decay must be a number in"),
        ({"ema": 0.0}, "ema decay must be a number in"),
        ({"clip": 0.0}, "gradient clip must be a number above 0"),
        ({"clip": float("inf")}, "gradient clip must be a number above 0"),
        ({"max_steps": 0}, "max steps must be"),
    ],
)
def test_bad_settings_are_bad_input(changes, message):
    with pytest.raises(BadInput, match=message):
        train_model(SPEC, DATA, config(**changes))


def test_on_epoch_is_called_after_every_epoch():
    calls = []
    result = train_model(SPEC, DATA, config(epochs=3), on_epoch=lambda e, a: calls.append((e, a)))
    assert [e for e, _ in calls] == [1, 2, 3]
    assert all(0.0 <= a <= 1.0 for _, a in calls)
    assert calls[-1][1] == result.val_accuracy


def test_exception_from_on_epoch_propagates():
    class Pruned(Exception):
        pass

    def prune(epoch, accuracy):
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        train_model(SPEC, DATA, config(epochs=3), on_epoch=prune)


def test_on_step_reports_progress():
    calls = []
    train_model(SPEC, colours(train_size=1200), config(epochs=1),  # 37 steps: 25 + 12
                on_step=lambda s, t, loss: calls.append((s, t, loss)))
    assert [(s, t) for s, t, _ in calls] == [(25, 37), (37, 37)]
    assert all(math.isfinite(loss) for _, _, loss in calls)


def test_test_accuracy_only_when_asked():
    assert train_model(SPEC, DATA, config(epochs=1)).test_accuracy is None
    result = train_model(SPEC, DATA, config(epochs=1, evaluate_test=True))
    assert 0.0 <= result.test_accuracy <= 1.0


def test_max_steps_stops_early():
    steps = []
    result = train_model(SPEC, DATA, config(epochs=5, max_steps=4),
                         on_step=lambda s, t, loss: steps.append((s, t)))
    assert result.state == "complete"
    assert steps == [(4, 4)]
    assert result.epochs == 1 and result.val_accuracy is not None


def test_device_data_is_moved_once_per_data_set():
    device = torch.device("cpu")
    first = resident.device_data(DATA, device)
    assert resident.device_data(DATA, device) is first
    assert resident.device_data(colours(), device) is not first


def test_schedule_warms_up_then_decays_to_zero():
    factors = [lr_factor(step, 100, 10) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert 0 < factors[-1] < 0.001


def test_batch_norm_recalibration_matches_eval_statistics():
    trainer = train.Trainer(SPEC, DATA, config(), total_steps=2)
    trainer.recalibrate_batch_norm(images=64)
    stem = trainer.model.stem[1]
    assert stem.momentum == pytest.approx(0.01)  # restored
    assert trainer.model.training
    assert stem.num_batches_tracked.item() == 1  # 64 images fit one evaluation batch


@pytest.mark.cuda  # skipped without a GPU; a failure with SCALESEARCH_REQUIRE_CUDA=1
def test_cuda_training_learns_and_reports_memory():
    result = train_model(SPEC, DATA, config(epochs=3, device="cuda", evaluate_test=True))
    assert result.state == "complete"
    assert result.val_accuracy > 0.9 and result.test_accuracy is not None
    assert result.peak_memory_bytes > 0


# ---------------------------------------------------------------------------------------------
# the proxy recipe


def test_the_stem_starts_as_the_whitening_filters_of_the_inputs_and_stays_frozen():
    from scalesearch.train.whiten import patch_sample, whitening_filters

    trainer = train.Trainer(SPEC, DATA, config(whiten=True, seed=3), total_steps=4)
    stem = trainer.model.stem[0]
    assert not stem.weight.requires_grad
    data = trainer.data
    inputs = data.eval_transform(data.train_images[patch_sample(data.train_images, 32)], 32,
                                 data.mean, data.std)
    filters = whitening_filters(inputs, 3, 2)
    channels = stem.weight.shape[0]
    half = (channels + 1) // 2
    expected = torch.cat([filters[:half], filters[27:27 + channels - half]])
    assert torch.allclose(stem.weight.detach().contiguous(), expected, atol=1e-6)
    # the same for every seed, and untouched by training
    other = train.Trainer(SPEC, DATA, config(whiten=True, seed=4), total_steps=4)
    assert torch.equal(other.model.stem[0].weight, stem.weight)
    before = stem.weight.detach().clone()
    for indices in trainer.epoch_batches():
        trainer.step(indices)
    assert torch.equal(stem.weight, before)
    # and the filters whiten: the patches they see come out uncorrelated, each direction with
    # variance lambda / (lambda + EPSILON) (1 where the patches vary much more than EPSILON)
    from scalesearch.train.whiten import EPSILON

    patches = torch.nn.functional.unfold(inputs.float(), 3, padding=1, stride=2)
    patches = patches.transpose(1, 2).reshape(-1, 27).double()
    centred = patches - patches.mean(0)
    cov = centred.T @ centred / centred.shape[0]
    values = torch.linalg.eigvalsh(cov).flip(0)
    out = centred @ filters[:27].reshape(27, 27).double().T
    whitened = out.T @ out / out.shape[0]
    assert torch.allclose(whitened, torch.diag(values / (values + EPSILON)), atol=1e-4)
    assert values[0] / (values[0] + EPSILON) > 0.99


def test_a_stem_wider_than_the_filters_keeps_its_random_start():
    from scalesearch.train.whiten import whiten_stem

    conv = torch.nn.Conv2d(3, 64, 3, 2, 1, bias=False)
    start = conv.weight.detach().clone()
    assert not whiten_stem(conv, torch.rand(4, 3, 16, 16))
    assert torch.equal(conv.weight, start) and conv.weight.requires_grad


def test_the_gradient_is_clipped_before_each_step():
    # With a tiny clip, one step of plain SGD moves the weights by at most lr * clip in norm
    # (Nesterov momentum: lr * (1 + 0.9) * clip on the first step), whatever the loss.
    trainer = train.Trainer(SPEC, DATA, config(clip=1e-4, lr=10.0, weight_decay=0.0,
                                               whiten=False, warmup=0.0), total_steps=4)
    before = [p.detach().clone() for p in trainer.params]
    trainer.step(next(trainer.epoch_batches()))
    moved = torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(trainer.params, before)))
    assert 0 < moved <= 10.0 * 1.9 * 1e-4 * 1.0001
    free = train.Trainer(SPEC, DATA, config(clip=None, lr=10.0, weight_decay=0.0,
                                            whiten=False, warmup=0.0), total_steps=4)
    before = [p.detach().clone() for p in free.params]
    free.step(next(free.epoch_batches()))
    assert torch.sqrt(sum(((p - b) ** 2).sum() for p, b in zip(free.params, before))) > 1e-2


def test_the_average_of_the_weights_is_evaluated_and_the_trained_ones_come_back():
    trainer = train.Trainer(SPEC, DATA, config(ema=0.9, whiten=False), total_steps=12)
    for _, indices in zip(range(6), trainer.batches()):
        trainer.step(indices)
    trained = [p.detach().clone() for p in trainer.params]
    average = trainer.average.values
    assert any(not torch.equal(a, t) for a, t in zip(average, trained))
    with trainer.evaluating():
        inside = [p.detach().clone() for p in trainer.params]
    assert all(torch.equal(i, a) for i, a in zip(inside, average))
    assert all(torch.equal(p, t) for p, t in zip(trainer.params, trained))
    # the average follows the TensorFlow warm-up: after one step it is 1 - 2/11 of the way
    fresh = train.Trainer(SPEC, DATA, config(ema=0.99, whiten=False), total_steps=4)
    start = [p.detach().clone() for p in fresh.params]
    fresh.step(next(fresh.epoch_batches()))
    decay = 2 / 11
    for a, s0, p in zip(fresh.average.values, start, fresh.params):
        assert torch.allclose(a, decay * s0 + (1 - decay) * p, atol=1e-6)


def test_no_drop_means_no_stochastic_depth_and_no_dropout():
    spec = scale_network(0.5, 0.25, 32)
    off = train.Trainer(spec, DATA, config(drop=False), total_steps=2).model
    on = train.Trainer(spec, DATA, config(drop=True), total_steps=2).model
    assert off.dropout.p == 0.0 and on.dropout.p == spec.dropout > 0
    rates = [m.drop.rate for m in on.blocks if hasattr(m.drop, "rate")]
    assert max(rates) > 0
    assert all(m.drop.rate == 0.0 for m in off.blocks if hasattr(m.drop, "rate"))


def test_flip_evaluation_gives_an_image_and_its_mirror_the_same_answer():
    trainer = train.Trainer(SPEC, DATA, config(flip_eval=True, seed=1), total_steps=4)
    for indices in trainer.epoch_batches():
        trainer.step(indices)
    images, labels = trainer.data.val_images, trainer.data.val_labels
    assert torch.equal(trainer.correct(images, labels), trainer.correct(images.flip(3), labels))


def test_the_validation_split_is_evaluated_only_when_asked():
    result = train_model(SPEC, DATA, config(evaluate_val=False, evaluate_test=True))
    assert result.val_accuracy is None and result.val_correct is None
    assert result.test_accuracy is not None and result.test_correct.shape == (45,)


def test_the_warm_up_is_a_share_of_the_steps():
    trainer = train.Trainer(SPEC, DATA, config(warmup=0.25), total_steps=20)
    assert trainer.warmup_steps == 5
    assert train.Trainer(SPEC, DATA, config(warmup=0.0), total_steps=20).warmup_steps == 0


@pytest.mark.parametrize("augmentation, per_256", [("none", 1.2), ("crop_flip", 0.8),
                                                   ("resized_crop", 0.8)])
def test_the_default_learning_rate_follows_the_data_sets_augmentation(augmentation, per_256):
    """SGD on fresh, unaugmented images takes the higher rate; RMSprop and a given rate do not
    change; the trainer builds its optimizer with the data set's own."""
    from scalesearch.train.config import default_lr
    from scalesearch.train.optim import make_optimizer

    assert default_lr("sgd", 64, augmentation) == pytest.approx(per_256 * 64 / 256)
    assert default_lr("rmsprop", 64, augmentation) == pytest.approx(0.016 * 64 / 256)
    data = colours()
    data.augmentation = augmentation
    trainer = train.Trainer(scale_network(0.25, 0.25, 16), data, config(), total_steps=4)
    assert trainer.base_lrs[0] == pytest.approx(per_256 * 32 / 256)
    model = torch.nn.Linear(2, 2)
    given = make_optimizer(model, config(lr=0.05), torch.device("cpu"), augmentation="none")
    assert given.param_groups[0]["lr"] == 0.05
