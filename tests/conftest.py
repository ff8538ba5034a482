"""Shared test set-up: the package is imported from the checkout, not from site-packages, and the user cache
directory is a temporary one."""

import atexit
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# The whole run uses a cache directory of its own, so no test (nor a `serve` it starts, which inherits the
# environment) reads or writes the user's real flow history (madace_status/sync/history/samples.py).
TEST_CACHE_HOME = tempfile.mkdtemp(prefix="madace-test-cache-")
os.environ["XDG_CACHE_HOME"] = TEST_CACHE_HOME
atexit.register(shutil.rmtree, TEST_CACHE_HOME, True)

try:  # keep hypothesis' files inside tests/, not at the top level of the repository
    from hypothesis import configuration, settings
    from hypothesis.database import DirectoryBasedExampleDatabase
except ImportError:
    pass
else:
    HYPOTHESIS_DIR = os.path.join(REPO_ROOT, "tests", ".hypothesis")
    configuration.set_hypothesis_home_dir(HYPOTHESIS_DIR)
    settings.register_profile("madace", database=DirectoryBasedExampleDatabase(HYPOTHESIS_DIR))
    settings.load_profile("madace")


import pytest  # noqa: E402  (after the path set-up above)


@pytest.fixture(scope="session")
def single_file_app(tmp_path_factory):
    """madace-status.pyz built as the README's Install says (a copy of the package folder without caches, then the
    standard library's zipapp), then copied alone into an empty directory: its path there."""
    import zipapp
    build = tmp_path_factory.mktemp("pyz-build")
    shutil.copytree(os.path.join(REPO_ROOT, "madace_status"), str(build / "pyz" / "madace_status"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = str(build / "madace-status.pyz")
    zipapp.create_archive(str(build / "pyz"), built, interpreter="/usr/bin/env python3", compressed=True,
                          main="madace_status.cli:main")
    alone = tmp_path_factory.mktemp("pyz-alone")
    shutil.copy(built, str(alone))
    return str(alone / "madace-status.pyz")
