"""Fine-tuning methods, one file each; installed as ``zobench.methods``.

The file name is the registry: ``zobench.methods.<name>`` must define ``VERSION``,
a dataclass ``Args`` and ``build(model, args, seed, plan=None) -> Method`` (Method API v2:
MethodModule in zobench/api.py).
Files starting with ``_`` hold shared helpers and are not methods.
"""

# From the repo root the working directory makes a bare `import methods` possible,
# which would create a second copy of every module. Refuse it (torchtune's trick).
if __name__ != "zobench.methods":
    raise ModuleNotFoundError(
        "import the methods as `zobench.methods`, not as top-level `methods` "
        "(install zobench with `pip install -e .`)"
    )
