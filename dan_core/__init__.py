"""dan_core: the DAN facial expression model, its training, evaluation, export and pipeline.

No Qt here. Training needs only torch and numpy (plus tqdm for progress).
"""

__version__ = "0.1.0"
