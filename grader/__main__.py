import sys

# Before anything else of the kit: never import from the working directory (grader/entry.py)
from grader.entry import drop_working_directory

drop_working_directory()

from grader.cli import main  # noqa: E402  (after the working directory is gone)

sys.exit(main())
