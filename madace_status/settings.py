"""Options that can also come from the environment: `MADACE_STATUS_<OPTION>` (README, Options). The command line
wins."""

import os

from madace_status.project.loader import ProjectPaths

ENV_PREFIX = "MADACE_STATUS_"
TRUE_WORDS = frozenset(("1", "true", "yes", "on"))


class SettingError(ValueError):
    """An environment variable with a value the option cannot take."""


def env_value(name, environ=None):
    """The value of MADACE_STATUS_<name>, or None when unset or empty."""
    environ = os.environ if environ is None else environ
    return environ.get(ENV_PREFIX + name) or None


def setting(value, name, environ=None, convert=None):
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


def flag(value, name, environ=None):
    """A store_true option, also on when MADACE_STATUS_<name> is 1/true/yes/on."""
    return bool(value) or (env_value(name, environ) or "").strip().lower() in TRUE_WORDS


def project_paths(args, environ=None):
    """The ProjectPaths from --root/--state-dir/--status-file/--epics-dir and their variables."""
    state_dirs = getattr(args, "state_dirs", None)
    if not state_dirs:
        state_dirs = [p for p in (env_value("STATE_DIR", environ) or "").split(os.pathsep) if p] or None
    return ProjectPaths(root=setting(getattr(args, "root", None), "ROOT", environ) or ".",
                        state_dirs=state_dirs,
                        status_file=setting(getattr(args, "status_file", None), "STATUS_FILE", environ),
                        epics_dir=setting(getattr(args, "epics_dir", None), "EPICS_DIR", environ))
