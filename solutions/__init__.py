"""Reference solutions for Day 2 (CNNs & residual networks). Instructor-only: never released.

Every part a student writes sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``;
``python -m grader release`` turns these files into the stubs in ``exercises/``.
"""
