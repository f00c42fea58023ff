"""Day 3's reference solutions (hidden from students)."""
