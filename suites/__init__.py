"""Suite specs (YAML), installed as ``zobench.suites`` so the default suite ships with the package."""

if __name__ != "zobench.suites":
    raise ModuleNotFoundError("load suites through `zobench.run.suite.load_suite`, not as top-level `suites`")
