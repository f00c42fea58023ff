"""Day-2 probes, one module per submission module (``probes/blocks.py`` probes ``blocks.py``).

Public code: no solutions imported here, since probes run inside untrusted workers.
"""
