"""The verdict: compound vs the best single dimension, judged against seed noise and cost."""

import pytest

from scalesearch.verdict.results import verdict


def entry(acc, flops=200.0, matched=True, n=2, **coefficients):
    return {"val_accuracy": acc, "n_seeds": n, "flops": flops, "flops_ratio": flops / 100,
            "flops_matched": matched, "alpha": coefficients.get("alpha", 1.2),
            "beta": coefficients.get("beta", 1.1), "gamma": coefficients.get("gamma", 1.15)}


def singles(depth=None, width=None, resolution=None):
    return {"depth": depth, "width": width, "resolution": resolution}


def test_compound_wins_beyond_twice_the_standard_error():
    out = verdict(entry(0.40), singles(entry(0.30), entry(0.34)), noise=0.01)
    assert out["answer"] == "compound"
    assert out["best_single_dimension"] == "width"
    assert out["difference"] == pytest.approx(0.06)
    assert out["standard_error"] == pytest.approx(0.01)  # 0.01 * sqrt(1/2 + 1/2)
    assert "+6.0 points" in out["text"]


def test_single_dimension_wins_and_is_named():
    out = verdict(entry(0.30), singles(resolution=entry(0.36)), noise=0.01)
    assert out["answer"] == "resolution"
    assert "resolution alone wins" in out["text"]


def test_difference_within_noise_is_a_tie():
    out = verdict(entry(0.35), singles(entry(0.34)), noise=0.01)  # 1 point < 2 x 1 point
    assert out["answer"] == "tie"


def test_a_winner_that_used_more_flops_does_not_win():
    cheap_compound = entry(0.30, flops=200.0)
    costly_corner = entry(0.36, flops=243.0, matched=False)
    out = verdict(cheap_compound, singles(costly_corner), noise=0.01)
    assert out["answer"] == "unequal"
    assert "1.22x the FLOPs" in out["text"] and "off budget: 2.43x" in out["text"]
    # The same corner losing despite its extra FLOPs leaves compound's win standing.
    out = verdict(entry(0.40, flops=200.0), singles(costly_corner), noise=0.01)
    assert out["answer"] == "compound"
    # Within the tolerance the cost counts as equal.
    out = verdict(entry(0.30, flops=200.0), singles(entry(0.36, flops=205.0)), noise=0.01,
                  tolerance=0.03)
    assert out["answer"] == "depth"


def test_missing_pieces_give_no_verdict():
    assert verdict(None, singles(entry(0.3)), noise=0.01)["answer"] == "unknown"
    assert verdict(entry(0.3), singles(), noise=0.01)["answer"] == "unknown"
    assert verdict(entry(0.4), singles(entry(0.3)), noise=None)["answer"] == "unknown"


def test_a_network_already_trained_or_training_is_a_duplicate():
    import optuna
    from optuna.trial import TrialState, create_trial

    from scalesearch.search.objective import same_network

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    done = create_trial(state=TrialState.COMPLETE, value=0.3,
                        user_attrs={"kind": "compound", "network": "A"})
    failed = create_trial(state=TrialState.FAIL, user_attrs={"kind": "compound", "network": "B"})
    study.add_trials([done, failed])
    running = study.ask()  # trial 2, still training network C
    running.set_user_attr("network", "C")
    running.set_user_attr("kind", "compound")

    def drawn(network, **attrs):
        trial = study.ask()
        trial.set_user_attr("kind", "compound")
        trial.set_user_attr("network", network)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return trial

    assert same_network(drawn("A")) == 0  # trained before
    assert same_network(drawn("C")) == 2  # being trained by another worker
    assert same_network(drawn("B")) is None  # its only other trial failed
    assert same_network(drawn("D")) is None
    assert same_network(drawn("A", rerun_of=0)) is None  # a re-run is never a duplicate
    # A lower-numbered trial never yields to a higher one (two workers agree on the trainer).
    assert same_network(running) is None
