"""Benchmarks of the kit (speed, by hand or ``make bench``; never timed assertions in CI).

``python -m bench [grade|selfcheck|smoke|train|all]``; see bench/README.md.
"""
