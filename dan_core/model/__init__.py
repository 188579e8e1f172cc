"""The network and what trains it, in torch alone: ``resnet`` (the backbone), ``heads`` (the
cross-attention heads), ``dan`` (the network, its config and named outputs) and ``losses``.

The bottom of the training side: below ``data`` and ``training`` (import-linter layers in pyproject.toml).
"""
