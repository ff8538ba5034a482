"""Options that can also come from the environment: `MADACE_STATUS_<OPTION>` (README, "Options"). The command line
wins."""

from __future__ import annotations

import os

from madace_status.project.loader import ProjectPaths

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not loaded at run time: every `status` pays for each import
    import argparse
    from typing import Callable, Mapping, Optional

__all__ = ["ENV_PREFIX", "SettingError", "env_value", "flag", "project_paths", "setting", "text_setting"]

ENV_PREFIX = "MADACE_STATUS_"
TRUE_WORDS = frozenset(("1", "true", "yes", "on"))


class SettingError(ValueError):
    """An environment variable with a value the option cannot take."""


def env_value(name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The value of MADACE_STATUS_<name>, or None when unset or empty."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_PREFIX + name) or None


def setting(value: object, name: str, environ: Optional[Mapping[str, str]] = None,
            convert: Optional[Callable[[str], object]] = None) -> object:
    """`value` from the command line if given, else MADACE_STATUS_<name> converted by `convert`."""
    if value not in (None, "", []):
        return value
    raw = env_value(name, environ)
    if raw is None or convert is None:
        return raw
    try:
        return convert(raw)
    except ValueError:
        raise SettingError("%s%s=%r is not a valid value" % (ENV_PREFIX, name, raw))


def flag(value: object, name: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """A store_true option, also on when MADACE_STATUS_<name> is 1/true/yes/on."""
    return bool(value) or (env_value(name, environ) or "").strip().lower() in TRUE_WORDS


def project_paths(args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> ProjectPaths:
    """The ProjectPaths from --root/--state-dir/--status-file/--epics-dir and their variables."""
    state_dirs = getattr(args, "state_dirs", None)
    if not state_dirs:
        state_dirs = [p for p in (env_value("STATE_DIR", environ) or "").split(os.pathsep) if p] or None
    return ProjectPaths(root=text_setting(getattr(args, "root", None), "ROOT", environ) or ".",
                        state_dirs=state_dirs,
                        status_file=text_setting(getattr(args, "status_file", None), "STATUS_FILE", environ),
                        epics_dir=text_setting(getattr(args, "epics_dir", None), "EPICS_DIR", environ))


def text_setting(value: Optional[str], name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """`setting` for a text option: the command line's text, else the variable's, else None."""
    chosen = setting(value, name, environ)
    return None if chosen is None else str(chosen)
