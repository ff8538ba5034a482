"""`python -m madace_status` entry point."""

import sys

from madace_status.cli import main

if __name__ == "__main__":
    sys.exit(main())
