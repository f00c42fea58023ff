"""Day 3 · Recurrent networks (a test pack): one exercise, one probe module, one grader."""

from __future__ import annotations

from pathlib import Path

from grader.manifest import Exercise, Pack

ROOT = Path(__file__).resolve().parent
COURSE = ROOT.parents[1] / "course"

PACK = Pack(
    name="day03",
    title="Day 3 · Recurrent Networks",
    modules=("rnn",),
    exercises=(Exercise("rnn_cell", "An Elman RNN cell", 10, ("rnn",), owns=("rnn.RNNCell",)),),
    root=ROOT,
    solutions_package="day03_solutions",
    submission_package="day03_exercises",
    public_tests=COURSE / "day03_public_tests",
)
