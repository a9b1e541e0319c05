"""One self-contained HTML page about a training run: what ``gtx report RUN -o report.html``
writes.

Sections (each an element with that id): ``summary``, ``config`` (the run's config.toml),
``losses`` (one panel per loss group, raw and smoothed), ``lr`` (learning rate per optimizer
group), ``eval`` (metrics from ``eval_every`` over steps, the best checkpoint marked; only when
the run evaluated) and ``samples`` (the sample grids over time, a slider and a strip). Plots are
PNG images drawn with matplotlib (``pip install 'gantransfer[report]'``) and, like the sample
grids, embedded as data URIs: the file opens anywhere, offline, with no CDN or external script
(the slider is a few lines of inline JavaScript; without JavaScript the strip still shows every
grid).

It reads only files the run writes as it goes (config.toml, metrics.jsonl, samples/), so it
works while the run is still training (a half-written last line is ignored) and for distributed
runs, whose files rank 0 writes. Loss groups come from the names: after a leading ``loss_``,
the part before the next ``_`` (``loss_G``, ``loss_G_A`` -> ``G``; ``loss_cycle_A`` ->
``cycle``; DCGAN's ``loss_d``, ``d_real`` -> ``d``).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ReportError", "build_report", "group_losses", "read_metrics", "smooth",
           "write_report"]

log = logging.getLogger(__name__)


class ReportError(ValueError):
    """The folder is not a run, or it has nothing to report yet (the message says which)."""


def read_metrics(run_dir: str | os.PathLike[str]) -> tuple[list[dict[str, Any]],
                                                            list[dict[str, Any]]]:
    """``(loss records, eval records)`` from ``RUN/metrics.jsonl``, in file order; lines that do
    not parse (the one a running trainer is writing) are skipped.

    Raises:
        ReportError: no metrics.jsonl, or no logged step in it.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not Path(run_dir).is_dir():
        raise ReportError(f"{run_dir} is not a folder; expected a run directory (gtx train -o)")
    if not path.is_file():
        raise ReportError(f"{run_dir} has no metrics.jsonl: it is not a run directory, or its "
                          "run has not logged a step yet (lines are written every log_every "
                          "steps)")
    losses, evals = [], []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "step" not in record:
            continue
        if "eval" in record:
            evals.append(record)
        elif "losses" in record:
            losses.append(record)
    if not losses and not evals:
        raise ReportError(f"{path} holds no metrics yet: nothing to report (is the run still at "
                          "its first steps? lines are written every log_every steps)")
    return losses, evals


def smooth(values: Sequence[float], weight: float = 0.6) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with bias correction, so the
    first points are not pulled towards 0; ``weight`` 0 returns the values."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last = last * weight + (1 - weight) * v
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


def group_losses(names: Sequence[str]) -> dict[str, list[str]]:
    """Loss names by group: after a leading ``loss_``, the part before the next ``_`` (module
    docs): ``loss_G``, ``loss_G_A`` -> ``G``; ``loss_cycle_A`` -> ``cycle``."""
    groups: dict[str, list[str]] = {}
    for name in names:
        bare = name.removeprefix("loss_") or name
        groups.setdefault(bare.split("_", 1)[0], []).append(name)
    return groups


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("gtx report draws its plots with matplotlib, which is not installed: "
                          "pip install 'gantransfer[report]'") from exc
    matplotlib.use("Agg")  # no display needed; files only
    import matplotlib.pyplot as plt

    return plt


def _figure_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _loss_plot(records: list[dict[str, Any]], weight: float) -> str | None:
    names = list(dict.fromkeys(k for r in records for k in r.get("losses", {})))
    if not names:
        return None
    plt = _pyplot()
    groups = group_losses(names)
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.6 * len(groups)), squeeze=False)
    for ax, (group, members) in zip(axes[:, 0], groups.items(), strict=True):
        for name in members:
            points = [(r["step"], r["losses"][name]) for r in records if name in r["losses"]]
            steps, values = [p[0] for p in points], [p[1] for p in points]
            line, = ax.plot(steps, values, alpha=0.25, linewidth=1)
            ax.plot(steps, smooth(values, weight), color=line.get_color(), label=name)
        ax.set_title(f"{group} losses (smoothed {weight})", fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _figure_uri(fig)


def _lr_plot(records: list[dict[str, Any]]) -> str | None:
    groups = list(dict.fromkeys(g for r in records for g in r.get("lr", {})))
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    for group in groups:
        points = [(r["step"], r["lr"][group]) for r in records if group in r.get("lr", {})]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=group)
    ax.set_title("learning rate", fontsize=10)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _figure_uri(fig)


def _eval_plot(records: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any] | None]:
    series: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        for target, values in r["eval"].items():
            for metric, value in values.items():
                if isinstance(value, (int, float)) and not metric.startswith("n_") \
                        and metric != "kid_std":
                    series.setdefault(f"{target}/{metric}", []).append((r["step"], value))
    best = next((r["best"] for r in reversed(records) if r.get("best")), None)
    if not series:
        return None, best
    plt = _pyplot()
    fig, axes = plt.subplots(len(series), 1, figsize=(8, 2.3 * len(series)), squeeze=False)
    for ax, (key, points) in zip(axes[:, 0], series.items(), strict=True):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
        if best is not None and best.get("metric") == key:
            ax.axvline(best["step"], color="tab:green", linestyle="--", linewidth=1)
            ax.plot([best["step"]], [best["value"]], marker="*", markersize=14,
                    color="tab:green", label=f"best: {best['value']:.4g} at step {best['step']}")
            ax.legend(fontsize=8)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _figure_uri(fig), best


def _sample_files(run_dir: Path, limit: int) -> list[Path]:
    files = sorted((run_dir / "samples").glob("step_*.png"))
    if len(files) <= limit:
        return files
    # Evenly spaced, always the first and the last grid.
    picks = sorted({round(i * (len(files) - 1) / (limit - 1)) for i in range(limit)})
    return [files[i] for i in picks]


def _step_of(path: Path) -> int:
    try:
        return int(path.stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}
pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:0.85em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:0.2em 0.6em;text-align:left}
.strip{display:flex;gap:1em;overflow-x:auto}.strip figure{margin:0;text-align:center}
img{max-width:100%;image-rendering:pixelated}figcaption{font-size:0.8em;color:#555}"""

_SLIDER_JS = """(function(){var s=document.getElementById('sample-slider');
var i=document.getElementById('sample-view');var c=document.getElementById('sample-step');
var d=JSON.parse(document.getElementById('sample-data').textContent);
function show(){var e=d[s.value];i.src=e.src;c.textContent='step '+e.step;}
s.addEventListener('input',show);show();})();"""


def build_report(run_dir: str | os.PathLike[str], *, smoothing: float = 0.6,
                 max_samples: int = 40) -> str:
    """The report of ``run_dir`` as an HTML string (module docs).

    Args:
        smoothing: weight of the loss curves' moving average (0 = raw only).
        max_samples: most sample grids embedded (evenly spaced, first and last kept).

    Raises:
        ReportError: not a run directory, or no metrics yet.
        ImportError: matplotlib is missing (the message names the extra).
    """
    run = Path(run_dir)
    losses, evals = read_metrics(run)
    _pyplot()  # fail on a missing matplotlib before any work
    config_path = run / "config.toml"
    config_text = config_path.read_text() if config_path.is_file() else "(no config.toml)"
    esc = html.escape
    last = max([r["step"] for r in losses + evals])
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>gantransfer run {esc(run.name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Run {esc(str(run))}</h1>",
             "<section id='summary'><h2>Summary</h2><table>",
             f"<tr><th>last logged step</th><td>{last}</td></tr>",
             f"<tr><th>loss lines</th><td>{len(losses)}</td></tr>",
             f"<tr><th>evaluations</th><td>{len(evals)}</td></tr>",
             f"<tr><th>report written</th><td>{datetime.datetime.now():%Y-%m-%d %H:%M}</td></tr>"]
    eval_uri, best = _eval_plot(evals) if evals else (None, None)
    if best:
        parts.append(f"<tr><th>best checkpoint</th><td>checkpoints/best.pt: {esc(best['metric'])}"
                     f" = {best['value']:.6g} at step {best['step']}</td></tr>")
    parts.append("</table></section>")
    parts.append(f"<section id='config'><h2>Config</h2><pre>{esc(config_text)}</pre></section>")
    loss_uri = _loss_plot(losses, smoothing)
    parts.append("<section id='losses'><h2>Losses</h2>"
                 + (f"<img alt='loss curves' src='{loss_uri}'>" if loss_uri else
                    "<p>No loss lines yet.</p>") + "</section>")
    lr_uri = _lr_plot(losses)
    if lr_uri:
        parts.append(f"<section id='lr'><h2>Learning rate</h2><img alt='learning rate' "
                     f"src='{lr_uri}'></section>")
    if eval_uri:
        skipped = next((r.get("skipped") for r in reversed(evals) if r.get("skipped")), None)
        note = ("<p>Not computed: " + "; ".join(f"{esc(k)} ({esc(v)})" for k, v in
                                                 skipped.items()) + "</p>") if skipped else ""
        parts.append(f"<section id='eval'><h2>Evaluation</h2>{note}<img alt='evaluation "
                     f"metrics' src='{eval_uri}'></section>")
    samples = _sample_files(run, max(2, max_samples))
    parts.append("<section id='samples'><h2>Samples</h2>")
    if samples:
        data = [{"step": _step_of(p), "src": "data:image/png;base64," +
                 base64.b64encode(p.read_bytes()).decode()} for p in samples]
        parts.append(f"<p><input type='range' id='sample-slider' min='0' max='{len(data) - 1}' "
                     f"value='{len(data) - 1}' style='width:100%'> <span id='sample-step'>"
                     f"</span></p><img id='sample-view' alt='sample grid' src='{data[-1]['src']}'>"
                     f"<script type='application/json' id='sample-data'>{json.dumps(data)}"
                     f"</script><script>{_SLIDER_JS}</script><h3>All grids</h3><div "
                     "class='strip'>")
        for entry in data:
            parts.append(f"<figure><img class='sample' alt='samples at step {entry['step']}' "
                         f"src='{entry['src']}'><figcaption>step {entry['step']}</figcaption>"
                         "</figure>")
        parts.append("</div>")
    else:
        parts.append("<p>No sample grids yet.</p>")
    parts.append("</section></body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 smoothing: float = 0.6, max_samples: int = 40) -> Path:
    """Write :func:`build_report` to ``out`` atomically; returns ``out``.

    Raises: as :func:`build_report`.
    """
    from ._io import atomic_write_bytes

    text = build_report(run_dir, smoothing=smoothing, max_samples=max_samples)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, text.encode())
    return out
