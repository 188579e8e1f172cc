"""``python -m dan_core.train`` (and ``torchrun ... -m dan_core.train``): runs ``dan_core.training.train``."""

if __name__ == "__main__":
    import sys

    from dan_core.training.train import run

    sys.exit(run())
