"""The Pinnace scheduler: binds pending pods to nodes through filter and score plugins.

Layers, lowest first: ``resources``/``podinfo`` (reading pods), ``cache`` (node state in numpy
arrays), ``framework`` + ``plugins`` (the decision), ``queue`` (which pod next), ``binder`` and
``events`` (writing back), ``scheduler`` (the loop), ``main`` (the command).
"""
