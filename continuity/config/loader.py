"""Load and validate the settings; turn validation errors into one sentence per key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from continuity.config.settings import CONFIG_FILE, Settings
from continuity.errors import ConfigError

CONFIG_ENV = "CONTINUITY_CONFIG"


def config_path_from(explicit: Path | None) -> Path | None:
    """The configuration file to read: ``--config``, else ``$CONTINUITY_CONFIG``, else none."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    return Path(from_env) if from_env else None


def load_settings(explicit: Path | None = None) -> Settings:
    """Read the TOML file (if any) and the environment, validate, and return the settings.

    Raises ConfigError whose message has one sentence per problem, each naming the key.
    """
    path = config_path_from(explicit)
    if path is not None:
        _check_toml_readable(path)
    token = CONFIG_FILE.set(path)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from None
    except SettingsError as exc:
        raise ConfigError(f"Invalid configuration: {exc}.") from None
    finally:
        CONFIG_FILE.reset(token)


def _check_toml_readable(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {path} does not exist.") from None
    except PermissionError:
        raise ConfigError(f"Configuration file {path} is not readable by this user.") from None
    except IsADirectoryError:
        raise ConfigError(f"Configuration file {path} is a directory, not a TOML file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Configuration file {path} is not valid TOML: {exc}.") from None


def describe_validation_error(error: ValidationError, path: Path | None) -> str:
    """One sentence per validation problem: which key, what is wrong, where to fix it."""
    source = f"{path} or " if path is not None else ""
    sentences = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        env_name = "CONTINUITY_" + "__".join(str(part).upper() for part in item["loc"])
        if item["type"] == "extra_forbidden":
            sentences.append(f"Invalid configuration: unknown key '{key}' (in {source}{env_name}).")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        sentences.append(f"Invalid configuration: {key}: {message} (set in {source}{env_name}).")
    return "\n".join(sentences)
