"""``python -m dan_core.bench_model`` (also ``dan-fer bench-model``): runs ``dan_core.training.bench_model``."""

if __name__ == "__main__":
    import sys

    from dan_core.training.bench_model import main

    sys.exit(main())
