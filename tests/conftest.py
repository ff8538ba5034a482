"""Shared test set-up: the package is imported from the checkout, not from site-packages."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

try:  # keep hypothesis' example database inside tests/, not at the top level of the repository
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase
except ImportError:
    pass
else:
    settings.register_profile(
        "madace", database=DirectoryBasedExampleDatabase(os.path.join(REPO_ROOT, "tests", ".hypothesis")))
    settings.load_profile("madace")
