"""Running a suite: suite → cells → one isolated process per cell → a record each.

suite.py parses a suite (strict_yaml.py, ranges.py) and expands it into cells; runner.py checks
them before anything runs; executors/ decides where cells run (local, ray, slurm) and driver.py
there claims them (claims.py); launcher.py starts the cell's process (signals.py, multigpu.py),
in which worker.py runs the loop in phases (cell_load.py, cell_record.py, checkpoint.py) and
progress.py shows it. This package imports nothing itself.
"""
