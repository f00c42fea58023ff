# %% [markdown]
# # Day 3 · Recurrent Networks
#
# Write your code in place of each `raise NotImplementedError()`, keeping the names and
# signatures: the grader calls them.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "solution": false} kit={"fill": "imports"}
# filled by `python -m grader notebook`: the imports of the reference modules

# %% [markdown]
# ### Exercise `rnn_cell` (10 points)
#
# One step of an Elman RNN: $h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})$.

# %% nbgrader={"grade": false, "grade_id": "rnn-RNNCell", "locked": false, "solution": true} kit={"fill": ["RNNCell"]}
# filled from day03_solutions/rnn.py

# %% nbgrader={"grade": true, "grade_id": "test_rnn_cell", "locked": true, "points": 10, "solution": false}
from grader.notebook_api import check, self_check

self_check("rnn_cell", pack="day03")
### BEGIN HIDDEN TESTS
check("rnn_cell", pack="day03")
### END HIDDEN TESTS
