"""``python -m dan_core.calibrate``: runs ``dan_core.training.calibrate``."""

if __name__ == "__main__":
    import sys

    from dan_core.training.calibrate import main

    sys.exit(main())
