"""The fidelity check in figures and in the report: does the verdict hold at longer training?

`fidelity` draws each strategy's test accuracy at the budget against training epochs (log
axis), the proxy's epochs marked; `fidelity_scatter` each network's proxy accuracy against its
accuracy at the longest schedule, with the rank correlations. `section` is the report's part.
Both read ``fidelity.json`` (`scalesearch.runs.fidelity.summarize`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scalesearch.errors import BadInput
from scalesearch.report.style import KIND_COLORS, KIND_LABELS, KIND_MARKERS, figure, rc, save, tidy

CAPTIONS = {
    "fidelity": "Each strategy at the budget against training epochs (log scale): test "
                "accuracy with its standard error (seeds and test images), the proxy's epochs "
                "marked; thin dashed lines are the best and worst other compound candidates "
                "of the search; hollow markers are interpolated between two networks.",
    "fidelity_scatter": "Each network's test accuracy at the proxy's epochs against its "
                        "accuracy at the longest schedule (mean over seeds ± standard error), "
                        "with the rank correlations and their 95% bootstrap intervals.",
}
LINE_KINDS = ("baseline", "depth", "width", "resolution", "compound")


def fidelity_table(summary: dict) -> pd.DataFrame:
    """Every judged strategy at every length as rows: kind, role ("chosen", "best", "worst"),
    candidate, epochs, mean, std (its standard error), interpolated."""
    columns = ["kind", "role", "candidate", "epochs", "mean", "std", "interpolated"]
    lengths = [(summary["proxy_epochs"], summary["proxy"])]
    lengths += [(s["epochs"], s) for s in summary["schedules"]]
    rows = []
    for epochs, at in lengths:
        entries = [("chosen", e) for e in at["at_budget"].values() if e]
        entries += [(e["role"], e) for e in at.get("others", [])]
        for role, e in entries:
            rows.append({"kind": e["kind"], "role": role, "candidate": e["candidate"],
                         "epochs": epochs, "mean": e["test_accuracy"],
                         "std": e["standard_error"],
                         "interpolated": e["method"] == "interpolated"})
    return pd.DataFrame(rows, columns=columns).sort_values(["kind", "candidate", "epochs"])


def _epoch_axis(ax, epochs: list[int], proxy: int) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(min(epochs) / 1.25, max(epochs) * 1.25)
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(epochs))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(proxy, color="0.55", linestyle=":", linewidth=1.0, zorder=1)
    ax.annotate(f"proxy ({proxy} epochs)", (proxy, 1.0), xycoords=("data", "axes fraction"),
                xytext=(3, -10), textcoords="offset points", fontsize=7.5, color="0.35")
    ax.set_xlabel("Training epochs (log scale)")


def plot_fidelity(table: pd.DataFrame, proxy_epochs: int, out_dir: Path,
                  title: str) -> list[Path]:
    """Test accuracy at the budget against epochs, one line per chosen strategy with its
    standard error, thin dashed lines for the other candidates. Saved as fidelity.png/svg."""
    if table.empty or table["epochs"].nunique() < 2:
        raise BadInput("the fidelity check has no finished strategy at a longer schedule yet")
    fig, ax = figure((6.4, 4.8))
    with rc():
        others = table[table["role"] != "chosen"]
        for i, (_, rows) in enumerate(others.groupby("candidate")):
            ax.plot(rows["epochs"], rows["mean"] * 100, color=KIND_COLORS["compound"],
                    linestyle="--", linewidth=0.8, alpha=0.5, marker="o", markersize=3,
                    markerfacecolor="white", zorder=2,
                    label="other compound candidates (best, worst)" if i == 0 else None)
        for i, kind in enumerate(LINE_KINDS):
            rows = table[(table["role"] == "chosen") & (table["kind"] == kind)].copy()
            if rows.empty:
                continue
            rows["epochs"] = rows["epochs"] * 1.015 ** (i - 2)  # error bars side by side
            colour = KIND_COLORS[kind]
            ax.errorbar(rows["epochs"], rows["mean"] * 100, yerr=rows["std"].fillna(0) * 100,
                        color=colour, linewidth=2.0 if kind == "compound" else 1.3,
                        elinewidth=0.9, capsize=2.5, zorder=3, label=KIND_LABELS[kind])
            for hollow in (False, True):
                pick = rows[rows["interpolated"] == hollow]
                ax.scatter(pick["epochs"], pick["mean"] * 100, marker=KIND_MARKERS[kind],
                           s=34, zorder=4, linewidths=1.0, c="white" if hollow else colour,
                           edgecolors=colour if hollow else "white")
        _epoch_axis(ax, list(table["epochs"]), proxy_epochs)
        ax.set_ylabel("Test accuracy at the budget (%), ± standard error")
        tidy(ax)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3,
                   frameon=False, handletextpad=0.4, columnspacing=1.2)
    return save(fig, out_dir, "fidelity", title)


def longest(summary: dict) -> dict | None:
    """The longest schedule with a correlation (complete ones first)."""
    usable = [s for s in summary["schedules"] if s["spearman"]["value"] is not None]
    complete = [s for s in usable if s["complete"]]
    return (complete or usable or [None])[-1]


def _correlation_text(s: dict) -> str:
    parts = []
    for name, symbol in (("spearman", "Spearman ρ"), ("kendall", "Kendall τ")):
        c = s[name]
        parts.append(f"{symbol} = {c['value']:.2f} [{c['low']:.2f}, {c['high']:.2f}]")
    return "\n".join(parts) + f"\n{s['networks']} networks, 95% bootstrap"


def plot_fidelity_scatter(summary: dict, out_dir: Path, title: str) -> list[Path]:
    """Each network's proxy accuracy against its accuracy at the longest schedule. Saved as
    fidelity_scatter.png/svg."""
    last = longest(summary)
    if last is None:
        raise BadInput("the fidelity check has no schedule with 3 networks measured at both "
                       "lengths yet")
    key = str(last["epochs"])
    points = [n for n in summary["networks"] if n["proxy"] and n["schedules"].get(key)]
    groups: dict[tuple[str, bool], list[dict]] = {}
    for n in points:
        extreme = "confirmed" not in n["roles"] and bool(set(n["roles"]) & {"best", "worst"})
        groups.setdefault((n["kind"], extreme), []).append(n)
    fig, ax = figure((5.6, 5.0))
    with rc():
        low, high = 100.0, 0.0
        for (kind, extreme), mine in sorted(groups.items(), key=lambda g: (
                LINE_KINDS.index(g[0][0]), g[0][1])):
            x = [n["proxy"]["mean"] * 100 for n in mine]
            y = [n["schedules"][key]["mean"] * 100 for n in mine]
            colour = KIND_COLORS[kind]
            ax.errorbar(x, y, xerr=[_error(n["proxy"]) for n in mine],
                        yerr=[_error(n["schedules"][key]) for n in mine], fmt="none",
                        ecolor=colour, elinewidth=0.8, capsize=2, zorder=2)
            ax.scatter(x, y, marker=KIND_MARKERS[kind], s=36, zorder=3, linewidths=1.0,
                       c="white" if extreme else colour, edgecolors=colour if extreme else "white",
                       label=KIND_LABELS[kind] + (" (best, worst others)" if extreme else ""))
            low, high = min(low, *x, *y), max(high, *x, *y)
        pad = max((high - low) * 0.08, 0.5)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.8", linestyle="--",
                linewidth=0.8, zorder=1)
        ax.text(0.03, 0.97, _correlation_text(last), transform=ax.transAxes, va="top",
                fontsize=8, bbox={"boxstyle": "round", "facecolor": "white",
                                  "edgecolor": "0.8"})
        ax.set_xlabel(f"Test accuracy at the proxy's {summary['proxy_epochs']} epochs (%)")
        ax.set_ylabel(f"Test accuracy at {last['epochs']} epochs (%)")
        tidy(ax)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2,
                   frameon=False, handletextpad=0.4, columnspacing=1.2)
    return save(fig, out_dir, "fidelity_scatter", title)


def _error(spread: dict) -> float:
    """Standard error of a mean over seeds, in points (0 with one seed)."""
    if spread.get("std") is None:
        return 0.0
    return spread["std"] / spread["seeds"] ** 0.5 * 100


def draw_fidelity(drawn, out: Path, attempt, proxy: str) -> None:
    """Both figures of the fidelity check, or why not (`drawn.fidelity_summary`); `proxy`
    describes the proxy settings for the titles."""
    summary = drawn.fidelity_summary
    if not summary:
        reason = (f"no fidelity check yet; run scalesearch fidelity {drawn.where.name} "
                  "--epochs 2x,4x")
        drawn.skipped.update(fidelity=reason, fidelity_scatter=reason)
        return
    tail = f"{proxy}; {summary['seeds']} fresh seed(s) per network, test accuracy"
    attempt("fidelity", lambda: plot_fidelity(
        fidelity_table(summary), summary["proxy_epochs"], out,
        f"Does the verdict hold at longer training? Proxy {tail}"))
    attempt("fidelity_scatter", lambda: plot_fidelity_scatter(
        summary, out, f"Proxy against longer training, per network. Proxy {tail}"))


def section(drawn) -> list[tuple]:
    """The report's section on the verdict at longer training."""
    summary, name = drawn.fidelity_summary, drawn.where.name
    epochs = drawn.settings.get("epochs")
    out: list[tuple] = [("h", 2, "Does the verdict hold at longer training?")]
    if not summary:
        if "confirmation" not in drawn.summary:
            return out + [("p", "Not yet: the study has no confirmed verdict.")]
        return out + [("p", f"The verdict above holds at the proxy's {epochs} training epochs. "
                            "Whether it holds with longer training is not measured: run "
                            f"`scalesearch fidelity {name} --epochs 2x,4x`, then "
                            "`scalesearch report` again.")]
    out.append(("p", f"The finalists (the confirmed compound network, each single dimension "
                     f"at the budget, the baseline and the {summary['extremes']} best and "
                     "worst other compound candidates of the search) trained again with only "
                     f"the number of epochs changed, {summary['seeds']} fresh seed(s) each, "
                     "judged on the test split. The proxy's accuracy is the "
                     f"{summary['proxy_source']}. Rank correlations are over networks, with "
                     "95% bootstrap intervals (networks, and seeds within each network); "
                     "choosing the best and worst candidates spreads the networks out, which "
                     "favours a high correlation."))
    rows = [[f"{epochs} (proxy)", "", "", "", _answer_cell(summary["proxy"]["verdict"])]]
    for s in summary["schedules"]:
        rows.append([f"{s['epochs']} ({s['multiple']:g}x)" + ("" if s["complete"] else
                                                               ", unfinished"),
                     str(s["networks"]), _interval(s["spearman"]), _interval(s["kendall"]),
                     _answer_cell(s["verdict"])])
    out.append(("table", ["epochs", "networks", "Spearman [95%]", "Kendall [95%]", "verdict"],
                rows))
    out.append(("p", f"**{summary['text']}**"))
    out.append(("list", [f"{s['epochs']} epochs: {s['verdict']['text']}"
                         for s in summary["schedules"]]))
    for key in ("fidelity", "fidelity_scatter"):
        if key in drawn.figures:
            out.append(("figure", drawn.figures[key][0], CAPTIONS[key]))
    return out


def _interval(c: dict) -> str:
    if c["value"] is None:
        return "undefined"
    return f"{c['value']:.2f} [{c['low']:.2f}, {c['high']:.2f}]"


def _answer_cell(verdict: dict) -> str:
    answer = verdict["answer"]
    return f"{answer} alone" if answer in ("depth", "width", "resolution") else answer
