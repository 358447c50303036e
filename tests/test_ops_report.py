"""`keeper report`: a real PNG (and an HTML page around it) for a local and a replayed session,
whose plotted figures are the ones the run summarised."""
from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from keeper.archive.reader import open_session
from keeper.ops.timeline import read_timeline
from tests.conftest import KEEPER


def keeper(*args, cwd: Path, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([*KEEPER, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    if ok:
        assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def only_session(parent: Path) -> Path:
    (folder,) = [p for p in parent.iterdir() if p.is_dir()]
    return folder


def assert_plot_png(path: Path, markets: int) -> Image.Image:
    """A PNG that decodes whole, sized for `markets` columns of panels, with ink on it."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(path)
    image.load()  # decodes every row: a truncated file fails here
    width, height = image.size
    assert width >= 500 * markets and 900 <= height <= 2000, image.size
    gray = image.convert("L")
    ink = sum(count for value, count in enumerate(gray.histogram()) if value < 200) / (width * height)
    assert 0.01 < ink < 0.5, f"{ink:.1%} of the image is drawn on"
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50, "lines, markers and text in several colours"
    return image


@pytest.fixture(scope="module")
def local_session(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("local")
    keeper("run", "--fast", "--ticks", 200, "--seed", 11, "--archive-dir", "tmp", cwd=home)
    session = only_session(home / "tmp")
    summary = json.loads((session / "summary.json").read_text())
    assert summary["total"]["fills"] > 0, "the plots below are of fills: this run must have some"
    return session


def test_report_png_for_a_local_session(local_session):
    result = keeper("report", local_session, cwd=local_session.parent)
    assert f"report written to {local_session / 'report.png'}" in result.stdout
    assert_plot_png(local_session / "report.png", markets=3)


def test_plotted_figures_end_at_the_summary(local_session):
    summary = json.loads((local_session / "summary.json").read_text())
    timeline = read_timeline(open_session(local_session))
    assert timeline.snapshots == summary["snapshots"] == summary["ticks"]
    for name, series in timeline.markets.items():
        figures = summary["markets"][name]
        assert round(series.pnl[-1], 6) == figures["total_pnl_usd"]
        assert max(series.drawdown) == pytest.approx(figures["max_drawdown_usd"], abs=1e-6)
        assert series.inventory[-1] == figures["position"]
        assert len(series.fills) == figures["fills"]
        assert len(series.ts) == summary["snapshots"]


def test_html_is_one_page_with_the_png_and_the_summary(local_session, tmp_path):
    out = tmp_path / "report.html"
    keeper("report", local_session, "--out", out, cwd=tmp_path)
    page = out.read_text()
    (encoded,) = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    png = tmp_path / "inlined.png"
    png.write_bytes(base64.b64decode(encoded))
    assert_plot_png(png, markets=3)
    assert "http" not in page.replace(str(local_session), ""), "self-contained: nothing to fetch"
    total = json.loads((local_session / "summary.json").read_text())["total"]
    assert f"<td>TOTAL</td><td>{total['fills']}</td><td>{total['volume_usd']:,.2f}</td>" in page
    assert f"<td>{total['total_pnl_usd']:,.2f}</td>" in page


def test_report_for_a_replayed_session(local_session, tmp_path):
    replays = tmp_path / "replays"
    result = keeper("replay", local_session, "--archive-dir", replays, "--json", tmp_path / "replay.json", cwd=tmp_path)
    replayed = only_session(replays)
    assert f"session: {replayed}" in result.stdout
    manifest = json.loads((replayed / "manifest.json").read_text())
    assert manifest["network"] == "replay" and manifest["markets"] == ["SOL-PERP", "BTC-PERP", "ETH-PERP"]
    what_if = json.loads((tmp_path / "replay.json").read_text())["summary"]
    summary = json.loads((replayed / "summary.json").read_text())
    assert summary["replay_of"] == str(local_session)
    assert summary["total"] == what_if["total"] and summary["total"]["fills"] > 0
    keeper("report", replayed, cwd=tmp_path)
    assert_plot_png(replayed / "report.png", markets=3)
    keeper("archive", "verify", replayed, cwd=tmp_path)


def test_replay_verify_does_not_archive(local_session, tmp_path):
    result = keeper("replay", local_session, "--verify", "--archive-dir", tmp_path / "x", cwd=tmp_path, ok=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, words", [
    (["report", "nowhere"], "no such session folder: nowhere"),
    (["report", "{session}", "--out", "plot.pdf"], "--out plot.pdf: the report is a .png or an .html file"),
    (["report", "{session}", "--out", "no/such/dir/r.png"], "--out no/such/dir/r.png: cannot write it"),
])
def test_bad_input_is_one_line(local_session, tmp_path, args, words):
    result = keeper(*[a.format(session=local_session) for a in args], cwd=tmp_path, ok=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_a_session_without_snapshots_has_nothing_to_plot(local_session, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_bytes((local_session / "manifest.json").read_bytes())
    result = keeper("report", empty, cwd=tmp_path, ok=False)
    assert result.returncode == 2 and f"{empty}: no snapshots to plot" in result.stderr
    assert not (empty / "report.png").exists()

