"""Trackers observe a cell (the Tracker protocol in zobench/api.py); none steers it.

registry.py lists the trackers every cell runs, measurement.py is the one object the worker
calls, which fans every call out to them. Adding a tracker is its own file here plus one line
in registry.py. This package imports nothing itself, so importing one tracker stays cheap.
"""
