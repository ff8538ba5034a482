"""Shared test set-up: the package is imported from the checkout, not from site-packages."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

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
