"""The faces a model learns from: ``readers`` (one reader per dataset), ``dataset`` (the records every
reader returns, the torch Dataset over them), ``augment`` (batch augmentation on the device), ``batches`` (samplers,
held-out splits, batches gathered on the device) and ``templates`` (a dataset's alignment template).

Above ``model``, below ``training`` (import-linter layers in pyproject.toml). What each dataset
declares about its faces (label order, native size, template file) is in ``dan_core.classes``,
below both, because the model's config defaults to one dataset's label order.
"""
