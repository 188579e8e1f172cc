"""Training and what is done with a trained model: ``config`` (TrainConfig and its command line),
``train`` (``dan-fer train``: a run set up, its records and checkpoints), ``loop`` (one epoch,
evaluation, the ``TrainContext`` they share), ``distributed``
(torchrun), ``checkpoint`` (save, load safely, import the paper's checkpoints), ``calibrate``
(temperature and prior shift), ``export`` (ONNX), ``metrics`` (accuracy, confusion, curves) and
``bench_model``.

Above ``data`` and ``model``, below the pipeline (import-linter layers in pyproject.toml). Training
itself needs torch, numpy and tqdm only; ``export`` and ``bench_model`` also use onnx and ONNX Runtime.
"""
