"""``python -m grader figures`` and ``pytest exercises --figures``: real PNGs, drawn from the
submission's own models, and one clear line (never a crash) for what cannot be drawn."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from grader.handle import ReferenceHandle
from grader.packs.day02.figures import GRADIENT_CASE
from grader.packs.day02.probes import figures as FP
from tests.corpus import Edit, Variant, build_submission

REPO = Path(__file__).resolve().parents[1]
PNGS = ("gradient_norms.png", "filters.png", "loss_curve.png")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def norms(profiles: dict, key: str) -> list[float]:
    return [n for _, n in profiles[key]]


def figures(submission: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "figures", str(submission),
                           "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.slow  # a training run in a subprocess
def test_reference_figures_are_real_pngs_of_its_own_models(tmp_path):
    done = figures(REPO / "solutions", tmp_path / "fig")
    assert done.returncode == 0, done.stderr
    for name in PNGS:
        path = tmp_path / "fig" / name
        width, height = png_size(path)
        assert 300 <= width <= 2000 and 300 <= height <= 2000
        assert 5_000 < path.stat().st_size < 2_000_000
    data = json.loads((tmp_path / "fig" / "figures.json").read_text())
    expected = ReferenceHandle().run(FP.gradient_profiles, GRADIENT_CASE)
    for key in ("plain", "residual"):
        assert norms(data["gradient_norms.png"], key) == pytest.approx(norms(expected, key),
                                                                      rel=1e-4)
    assert len(data["filters.png"]["losses"]) == 12  # 4 steps x 3 epochs


@pytest.mark.slow  # a training run in a subprocess
def test_buggy_submission_draws_what_it_can(tmp_path):
    """A ResidualNet without its skip and a stub train.py: the gradient picture shows the
    submission's (plain-looking) residual net; the training pictures say why they are missing."""
    skipless = Variant("no_skip", (Edit(
        "blocks", "        out = out + self.shortcut(x)  # THE residual connection\n", ""),),
        hurts=())
    sub = build_submission(skipless, tmp_path / "sub")
    shutil.copy(REPO / "exercises" / "train.py", sub / "train.py")
    done = figures(sub, tmp_path / "fig")
    assert done.returncode == 0 and "Traceback" not in done.stderr + done.stdout
    assert "loss_curve.png: not drawn: not implemented yet" in done.stdout
    assert "filters.png: not drawn: not implemented yet" in done.stdout
    png_size(tmp_path / "fig" / "gradient_norms.png")
    ours = json.loads((tmp_path / "fig" / "figures.json").read_text())["gradient_norms.png"]
    reference = ReferenceHandle().run(FP.gradient_profiles, GRADIENT_CASE)
    assert norms(ours, "plain") == pytest.approx(norms(reference, "plain"), rel=1e-4)
    assert norms(ours, "residual") != pytest.approx(norms(reference, "residual"), rel=1e-2)


def test_missing_submission_is_one_line(tmp_path):
    done = figures(tmp_path / "nope", tmp_path / "fig")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # a training run in a subprocess
def test_selfcheck_option_draws_the_students_models(tmp_path):
    package = tmp_path / "exercises"
    shutil.copytree(REPO / "solutions", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text("")
    (tmp_path / "test_one.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "test_one.py", "-q",
                           "-p", "no:cacheprovider", "--figures", "figs"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in PNGS:
        png_size(tmp_path / "figs" / name)
