"""Records, once written: stored (store.py), read along one road (records.py), and turned into output.

report.py (Markdown), html_report.py with figures.py, compare.py (the gate, with thresholds.py),
asv_flow.py (results over time), nightly.py (the nightly job); formatting.py holds the shared
human-readable units. None of it runs a model, and none of it imports torch. This package imports
nothing itself.
"""
