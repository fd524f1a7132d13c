"""pytest wiring for the package tests: the integration harness (tests/integration)
and its `h` fixture, and `pkg`: the package `make package` built, unpacked
into a scratch root once per run."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
h = _integration.h
pytest_runtest_makereport = _integration.pytest_runtest_makereport

from harness import REPO_ROOT  # noqa: E402  (after the path is set)

DEB_DIR = REPO_ROOT / "build" / "deb"


class Package:
    """The .deb files of this version and a root they are unpacked into."""

    def __init__(self, root):
        self.version = (REPO_ROOT / "VERSION").read_text().strip()
        debs = sorted(DEB_DIR.glob(f"levee_{self.version}_*.deb"))
        assert len(debs) == 1, (f"expected one levee_{self.version}_*.deb in {DEB_DIR}, "
                                f"found {debs}: run `make package`")
        self.deb = debs[0]
        self.changes = self.deb.with_suffix(".changes")
        self.src = DEB_DIR / "src"  # the tree it was built in
        self.root = root
        subprocess.run(["dpkg-deb", "-x", str(self.deb), str(root)], check=True, timeout=120)

    def path(self, p):
        return self.root / p.lstrip("/")


@pytest.fixture(scope="session")
def pkg(tmp_path_factory):
    return Package(tmp_path_factory.mktemp("root"))
