"""methods/ and suites/ are importable only as zobench.methods / zobench.suites."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.integration
def test_bare_import_of_methods_fails_even_from_the_repo_root():
    """Running from the repo root would otherwise create a second copy of every method module."""
    for name in ("methods", "suites"):
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode != 0
        assert "ModuleNotFoundError" in proc.stderr


def test_methods_import_through_the_package():
    """The setuptools package-dir mapping serves methods/ as zobench.methods."""
    import zobench.methods.mezo as mezo

    assert mezo.__name__ == "zobench.methods.mezo"
