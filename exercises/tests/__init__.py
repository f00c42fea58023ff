"""The public self-check of Day 2: ``pytest exercises`` (or ``pytest exercises -m conv2d``).

Every test checks one property of your code against an oracle that needs no solution: torch
itself, the lesson's worked examples, closed forms, or a measurement (e.g. the receptive field
read off a gradient). The hidden grader runs more cases of the same kind.
"""
