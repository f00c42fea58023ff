"""Day 3's probes: plain-data measurements of a submission, run inside the sandbox."""
