"""zobench: what memory-efficient LLM fine-tuning really costs, measured side by side."""

__version__ = "0.1.0"


def load_results(path):
    """Read every record under ``path`` into a pandas DataFrame (see zobench.results.store)."""
    from zobench.results.store import load_results as _load

    return _load(path)
