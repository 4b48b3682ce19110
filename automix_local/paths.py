"""Where automix_local keeps its state: platformdirs, or $AUTOMIX_LOCAL_HOME when set."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "automix-local"
HOME_ENV = "AUTOMIX_LOCAL_HOME"
CONFIG_ENV = "AUTOMIX_LOCAL_CONFIG"


@dataclass(frozen=True)
class Paths:
    """The directories automix_local may write to. Nothing writes anywhere else unless told."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    state_dir: Path

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def user_config(self) -> Path:
        return self.config_dir / "models.toml"

    @property
    def egress_log(self) -> Path:
        return self.data_dir / "egress.sqlite"

    @property
    def hash_cache(self) -> Path:
        return self.state_dir / "verified.json"

    @property
    def download_dir(self) -> Path:
        return self.cache_dir / "downloads"


def default_paths() -> Paths:
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache", root / "state")
    return Paths(
        Path(platformdirs.user_config_dir(APP)),
        Path(platformdirs.user_data_dir(APP)),
        Path(platformdirs.user_cache_dir(APP)),
        Path(platformdirs.user_state_dir(APP)),
    )


def display_path(path: Path | str) -> str:
    """A path as a user would type it: relative to the working directory if inside it, else with ~."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        home = str(Path.home())
        s = str(p)
        return "~" + s[len(home) :] if s.startswith(home + os.sep) else s
