"""Grading a whole class: ``python -m grader batch SUBMISSIONS --out DIR``.

    collect.py    the students in a folder, a zip of one, or a Canvas download (safe, capped)
    run.py        one Dask task per submission, graded in a fresh sandboxed grading process
    store.py      atomic writes and the resume key (content hash, grader version, settings)
    gradebook.py  gradebook.csv, summary.md (class insights), histogram.png, feedback.md
    canvas.py     the totals into a Canvas gradebook export, for Grades > Import (canvas-csv)
"""
