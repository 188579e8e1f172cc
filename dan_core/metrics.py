"""``python -m dan_core.metrics``: runs ``dan_core.training.metrics`` (learning curves from metrics.jsonl)."""

if __name__ == "__main__":
    import sys

    from dan_core.training.metrics import main

    sys.exit(main())
