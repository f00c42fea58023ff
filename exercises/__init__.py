"""Day 2 · CNNs & Residual Networks: the package the grader imports as ``exercises``.

Your code goes in its modules, in place of each ``raise NotImplementedError(...)``:
conv.py, receptive_field.py, param_count.py, blocks.py, resnet.py, gradients.py, train.py,
visualize.py.

Keep the names and signatures: the grader calls them. Check your work with
``pytest exercises``.
"""
