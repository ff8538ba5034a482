"""madace_status: a live status checker for MADACE projects (standard library only)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
