"""`gtx report`: a self-contained HTML page with the expected sections and embedded images."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.data import DataConfig, demo
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.report import ReportError, build_report, group_losses, smooth

pytest.importorskip("matplotlib")

runner = CliRunner()


class _Page(HTMLParser):
    """Section ids, images (alt, src) and script sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(str(a.get("id")))
        elif tag == "img":
            self.images.append((str(a.get("alt")), str(a.get("src"))))
        elif tag == "script":
            self.scripts.append(a)
        elif tag == "link":
            self.links.append(str(a.get("href")))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    demo.make_two_domain(tmp / "data", n_train=4, n_test=2, size=32, seed=0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4, seed=0)
    config = TrainConfig(steps=4, device="cpu", log_every=1, sample_every=2, sample_count=2,
                         eval_every=2, eval_metrics="psnr,stats", checkpoint_every=0)
    Trainer(model, DataConfig(root=tmp / "data", load_size=32, crop_size=32), config,
            tmp / "run", callbacks=()).fit()
    return tmp / "run"


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


def test_report_has_every_section_and_embedded_images(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(run), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed(out.read_text())
    assert page.sections == ["summary", "config", "losses", "lr", "eval", "samples"]
    alts = [alt for alt, _ in page.images]
    assert {"loss curves", "learning rate", "evaluation metrics", "sample grid"} <= set(alts)
    for _, src in page.images:
        _png(src)  # every image is embedded PNG data: nothing outside the file
    strip = [alt for alt in alts if alt.startswith("samples at step")]
    assert strip == ["samples at step 0", "samples at step 2", "samples at step 4"]
    assert page.links == [] and all(s.get("src") is None for s in page.scripts)  # no CDN
    text = out.read_text()
    assert "architecture" in text and "cyclegan" in text  # the config
    best = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if "eval" in line][-1]["best"]
    assert f"at step {best['step']}" in text and best["metric"] == "a2b/psnr"
    # An existing file is not replaced without --overwrite (usage error).
    assert runner.invoke(app, ["report", str(run), "-o", str(out)]).exit_code == 2


def test_report_of_a_run_still_writing_skips_the_partial_line(run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "running"
    shutil.copytree(run, copy)
    with (copy / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 5, "losses": {"G_A": 0.')  # the line a trainer is writing
    page = _Page()
    page.feed(build_report(copy))
    assert "losses" in page.sections


def test_run_without_metrics_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty"), "-o",
                                 str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "has no metrics.jsonl" in str(result.exception)
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    with pytest.raises(ReportError, match="no metrics yet"):
        build_report(tmp_path / "empty")
    assert not (tmp_path / "r.html").exists()


def test_smoothing_and_groups() -> None:
    assert smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # bias-corrected
    assert smooth([0.0, 10.0], 0.0) == [0.0, 10.0]
    assert smooth([0.0, 10.0], 0.5) == pytest.approx([0.0, 10.0 * 0.5 / 0.75])
    assert group_losses(["loss_G", "loss_G_A", "loss_D_A", "loss_cycle_A", "gp", "d_real"]) == {
        "G": ["loss_G", "loss_G_A"], "D": ["loss_D_A"], "cycle": ["loss_cycle_A"], "gp": ["gp"],
        "d": ["d_real"]}
