"""The study report: results/<name>/report.md and report.html (self-contained, opens offline).

The report is built once as a list of blocks (headings, paragraphs, tables, figures) from what
`scalesearch.report.figures.draw_study` read and drew, then rendered twice: Markdown with figures
linked relatively (plots/*.png), HTML with the PNGs embedded. Accuracies are percentages with
one decimal, spreads are standard deviations over seeds (ddof 1); FLOPs are fvcore
multiply-adds.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from pathlib import Path

import pandas as pd

# Block kinds: ("h", level, text), ("p", text), ("list", [text]), ("table", header, rows),
# ("figure", png path, caption).
Block = tuple

CAPTIONS = {
    "scaling": "Compound against single-dimension scaling at equal FLOPs: test accuracy at "
               "each budget with its standard error (seeds and test images); hollow markers "
               "are interpolated between the two networks that bracket the budget.",
    "frontier": "Every network the search trained: validation accuracy against FLOPs; hollow "
                "markers are candidates interpolated at the budget between two networks.",
    "frontier_activations": "The same networks against their activations (output elements of "
                            "the convolutions and linear layers, fvcore's convention): at equal "
                            "FLOPs they differ, and on memory-bound GPUs activations predict "
                            "runtime.",
    "frontier_time": "The same networks against their measured training time per image on the "
                     "device the study ran on (median over epochs after the first).",
    "surface": "The search surface: validation accuracy at the budget over the shares of the "
               "budget spent on depth, width and resolution, with the found optimum and the "
               "paper's coefficients.",
    "history": "The search in trial order: validation accuracy and the best compound "
               "candidate so far.",
    "timeline": "When each trial ran.",
    "importances": "How much each searched parameter explains the validation accuracy "
                   "(Optuna's PED-ANOVA; u says how much of the budget leaves depth, v how "
                   "the rest splits between width and resolution).",
}


def pct(value) -> str:
    """0.4123 -> '41.2' (percent, one decimal); '' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value * 100:.1f}"


def spread(mean, std) -> str:
    """'41.2 ± 0.5' (percent) or '41.2' without a spread."""
    text = pct(mean)
    return f"{text} ± {pct(std)}" if pct(std) else text


def blocks(drawn) -> list[Block]:
    """The report's content from a `figures.Drawn`."""
    name, settings, summary = drawn.where.name, drawn.settings, drawn.summary
    out: list[Block] = [("h", 1, f"Scaling report: {name}"),
                        ("p", f"Generated {time.strftime('%Y-%m-%d %H:%M')} by scalesearch "
                              f"report from {drawn.where.folder}. Accuracies are percentages; "
                              "± is the standard error at the budget (seed noise and the "
                              "sampling error of the evaluation images); FLOPs are fvcore "
                              "multiply-adds of one image.")]
    out += answer(summary)
    out += _search(summary, drawn.frame, settings)
    out += _confirmation(summary)
    from scalesearch.report.fidelity import section

    out += section(drawn)  # the verdict at longer training, or the command that checks it
    out += _comparison(drawn)
    out += _figures(drawn)
    out += _environment(drawn.where.folder)
    out += _configuration(settings)
    return out


def answer(summary: dict) -> list[Block]:
    """The report's first section: the answer, its interval, what it claims and what would
    decide it; then the secondary verdicts (other costs), marked so."""
    verdict = summary["verdict"]
    out: list[Block] = [("h", 2, "The answer"), ("p", f"**{verdict['text']}**")]
    if "interval" in verdict:
        low, high = verdict["interval"]
        out.append(("list", [
            f"Answer: {verdict['answer']}. Claim: {verdict['claim']}",
            f"Compound minus {verdict['single_dimension']} alone (the strongest single "
            f"dimension): {pct(verdict['difference'])} points, 95% interval {pct(low)} to "
            f"{pct(high)}; equivalence margin ±{pct(verdict['margin'])} points.",
            *[f"Against {kind} alone: {pct(o['difference'])} points ({pct(o['interval'][0])} "
              f"to {pct(o['interval'][1])}), tested on each pair of networks."
              for kind, o in verdict["opponents"].items()]]))
    secondary = [v["text"] for v in summary.get("verdicts_by_cost", {}).values()
                 if v.get("secondary")]
    if secondary:
        out.append(("p", "Secondary verdicts (each its own 5% test, not part of the answer):"))
        out.append(("list", secondary))
    return out


def _configuration(settings: dict) -> list[Block]:
    rows = [[key, "(unset)" if value is None else str(value)] for key, value in settings.items()]
    return [("h", 2, "Configuration"),
            ("p", "The study's settings (results/<name>/config.toml holds them as a study "
                  "file)."),
            ("table", ["setting", "value"], rows)]


def _strategy_rows(at_budget: dict, split: str) -> list[list[str]]:
    rows = []
    for kind, e in at_budget.items():
        if not e:
            rows.append([kind, "", "", "not judged", ""])
            continue
        networks = "; ".join(f"d {n['depth_mult']:.3f}, w {n['width_mult']:.3f}, "
                             f"{n['resolution']} px, {n['flops_ratio']:.2f}x (weight "
                             f"{n['weight']:.2f})" for n in e["networks"])
        coefficients = (f"{e['alpha']:.3f}, {e['beta']:.3f}, {e['gamma']:.3f}"
                        if kind == "compound" else "")
        rows.append([kind, coefficients, networks, e["method"],
                     spread(e[f"{split}_accuracy"], e["standard_error"])])
    return rows


def _search(summary: dict, frame: pd.DataFrame, settings: dict) -> list[Block]:
    out: list[Block] = [("h", 2, "Found coefficients")]
    best = summary.get("best")
    if best:
        out.append(("p", f"Best compound candidate at {summary['budget']:g}x the base FLOPs: "
                         f"**alpha {best['alpha']:.3f}, beta {best['beta']:.3f}, gamma "
                         f"{best['gamma']:.3f}**, validation accuracy at the budget "
                         f"{spread(best['val_accuracy'], best['standard_error'])}% "
                         f"({best['method']}). The paper found 1.2, 1.1, 1.15 on ImageNet."))
    else:
        out.append(("p", "No compound candidate finished, so no coefficients were found."))
    out.append(("p", "Each strategy at the budget on the search's own runs (validation split, "
                     "the numbers that chose; they do not judge):"))
    out.append(("table", ["strategy", "alpha, beta, gamma", "network(s)", "judged",
                          "val % ± s.e."], _strategy_rows(summary["at_budget"], "val")))
    done = frame[frame["state"] == "complete"]
    groups = done.groupby("trial", sort=True)
    rows = [[str(int(t)), g["kind"].iloc[0], str(int(g["candidate"].iloc[0])),
             g["bracket"].iloc[0], f"{g['alpha'].iloc[0]:.3f}", f"{g['beta'].iloc[0]:.3f}",
             f"{g['gamma'].iloc[0]:.3f}", f"{g['depth_mult'].iloc[0]:.3f}",
             f"{g['width_mult'].iloc[0]:.3f}", str(int(g["resolution"].iloc[0])),
             f"{g['flops_ratio'].iloc[0]:.2f}",
             spread(g["val_accuracy"].mean(), g["val_accuracy"].std(ddof=1)), str(len(g))]
            for t, g in groups]
    out.append(("p", "Every network the search trained (± here is the standard deviation over "
                     "seeds):"))
    out.append(("table", ["trial", "kind", "candidate", "bracket", "alpha", "beta", "gamma",
                          "depth_mult", "width_mult", "resolution", "FLOPs x base", "val %",
                          "seeds"], rows))
    return out


def _confirmation(summary: dict) -> list[Block]:
    out: list[Block] = [("h", 2, "Verdict (confirmed on fresh seeds, test split)")]
    confirmation = summary.get("confirmation")
    if not confirmation:
        return out + [("p", summary["verdict"]["text"])]
    noise = confirmation["noise"]
    out.append(("p", f"The search's best compound candidate and each single dimension at the "
                     f"budget, trained again on {confirmation['seeds']} seed(s) each that no "
                     f"search run used, judged on the test split ({noise['images']} images), "
                     "which nothing was chosen on. The verdict judges compound against each "
                     "single dimension (the answer is at the top)."))
    out.append(("table", ["strategy", "alpha, beta, gamma", "network(s)", "judged",
                          "test % ± s.e."], _strategy_rows(confirmation["at_budget"], "test")))
    if noise["seed_std"] is not None:
        own = noise.get("per_network") or {}
        spread = (f"; per network from {pct(min(n['seed_std'] for n in own.values()))} to "
                  f"{pct(max(n['seed_std'] for n in own.values()))}, each on its own runs, "
                  "which is what the verdict uses" if own else "")
        out.append(("p", f"Seed noise: {pct(noise['seed_std'])} points of test accuracy per "
                         f"run (pooled over the networks, {noise['degrees_of_freedom']} degrees "
                         f"of freedom{spread}); the standard errors add the sampling error of "
                         "the test images, paired between networks judged on the same images."))
    return out


def _comparison(drawn) -> list[Block]:
    out: list[Block] = [("h", 2, "Compound vs single-dimension scaling across budgets")]
    s = drawn.compare_summary
    if not s or not s["table"]:
        return out + [("p", f"No comparison yet: run `scalesearch compare {drawn.where.name} "
                            "--phi 1,2`, then `scalesearch report` again.")]
    c = s["coefficients"]
    out.append(("p", "For each phi, the budget is (alpha * beta^2 * gamma^2)^phi times the "
                     f"base's FLOPs (alpha {c['alpha']:.3f}, beta {c['beta']:.3f}, gamma "
                     f"{c['gamma']:.3f}). Compound (their direction) and each single "
                     "dimension are brought to it: one network within the tolerance "
                     f"({drawn.settings.get('tolerance', 0.03):.0%}), or two that bracket it, "
                     f"interpolated in log FLOPs; {s['seeds']} seed(s) per network. "
                     "**Accuracies here are on the test split**, which neither the search "
                     "nor the choice of alpha, beta and gamma ever saw."))
    rows = []
    for phi, strategies in s["at_budget"].items():
        for row in _strategy_rows(strategies, "test"):
            rows.append([phi, *row])
    out.append(("table", ["phi", "strategy", "alpha, beta, gamma", "network(s)", "judged",
                          "test % ± s.e."], rows))
    out.append(("h", 3, "Verdict per budget"))
    out.append(("list", [v["text"] for v in s["verdicts"]] or ["No finished phi yet."]))
    return out


def _figures(drawn) -> list[Block]:
    out: list[Block] = [("h", 2, "Figures")]
    order = ("scaling", "frontier", "frontier_activations", "frontier_time", "surface",
             "history", "timeline", "importances")
    for key in order:
        if key in drawn.figures:
            out.append(("figure", drawn.figures[key][0], CAPTIONS[key]))
    if drawn.skipped:
        out.append(("p", "Not drawn:"))
        out.append(("list", [f"{k}: {v}" for k, v in drawn.skipped.items()]))
    out.append(("p", "Every figure is also saved as SVG next to its PNG in plots/."))
    return out


def _environment(folder: Path) -> list[Block]:
    path = folder / "environment.json"
    out: list[Block] = [("h", 2, "Environment")]
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out + [("p", "environment.json is missing (the study was run elsewhere).")]
    out.append(("p", "Where the search ran (environment.json, written by scalesearch run)."))
    out.append(("table", ["", "value"], [[k, str(v)] for k, v in env.items()]))
    return out


# ---------------------------------------------------------------------------------------------
# rendering


def to_markdown(content: list[Block], folder: Path) -> str:
    """Markdown; figures are linked relative to `folder` (the report's own folder)."""
    lines: list[str] = []
    for block in content:
        kind = block[0]
        if kind == "h":
            lines += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                      for row in rows]
            lines.append("")
        elif kind == "figure":
            rel = Path(block[1]).relative_to(folder).as_posix()
            lines += [f"![{block[2]}]({rel})", "", f"*{block[2]}*", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escape text for HTML and turn **bold** and `code` into tags."""
    parts = html.escape(text).split("**")
    text = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(content: list[Block], title: str) -> str:
    """A standalone HTML page; figures embedded as base64 PNG so it opens anywhere offline."""
    body: list[str] = []
    for block in content:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                           for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" '
                        f'alt="{html.escape(block[2])}"><figcaption>{_inline(block[2])}'
                        "</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;"
             "padding:0 1em;line-height:1.45;color:#222}table{border-collapse:collapse;"
             "margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;"
             "text-align:right}th{background:#f4f4f4}td:nth-child(2){text-align:left}"
             "img{max-width:100%}figure{margin:1.5em 0}figcaption{font-size:.9em;color:#555}"
             "code{background:#f4f4f4;padding:0 .2em}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(drawn) -> list[Path]:
    """results/<name>/report.md and report.html, written atomically; returns both paths."""
    folder = drawn.where.folder
    content = blocks(drawn)
    from scalesearch.store.files import write_texts

    return write_texts(folder, {
        "report.md": to_markdown(content, folder),
        "report.html": to_html(content, f"Scaling report: {drawn.where.name}"),
    })
