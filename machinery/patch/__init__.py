"""Applying three of the PATCH bodies Kubernetes accepts to plain-dict objects.

Import the module you need: ``json_patch`` (RFC 6902), ``merge_patch`` (RFC 7386), ``strategic``
(strategic merge patch, driven by the list table in ``merge_keys``). All raise
``errors.PatchError`` for bad input and never change their arguments.
"""
