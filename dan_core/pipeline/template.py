"""The earlier name of ``python -m dan_core.pipeline.derive_template`` (kept so documented commands still run)."""

from dan_core.pipeline.derive_template import main

if __name__ == "__main__":
    raise SystemExit(main())
