"""Strict configuration models and one-line error messages for pydantic validation.

Every configuration file (regimens, paradigms, trial specs) is a pydantic model derived from
:class:`StrictModel`: unknown keys are rejected and values are validated where they enter. A
:class:`pydantic.ValidationError` is turned into a single line that names the field path, the
value received and what is allowed, so that the command line never shows a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from reconsolidate.exceptions import InputError

__all__ = ["StrictModel", "format_validation_error", "load_toml_model", "read_toml"]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of all configuration models: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            # pydantic adds the tag of a discriminated union or a function-validator name
            # to the location; they are not part of the user's field path.
            if isinstance(item, str) and ("function-" in item or item.startswith("tagged-union")):
                continue
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``M``, ``M | None``, ``list[M]`` or ``dict[str, M]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the (sub)model that holds the unknown key at ``loc``, or None if unknown."""
    cls = model
    for part in loc[:-1]:
        if cls is None:
            return None
        if not isinstance(part, str) or part not in cls.model_fields:
            continue  # list indices, dict keys and union tags do not change the model
        cls = _submodel(cls.model_fields[part].annotation)
    if cls is None:
        return None
    return [f.alias or name for name, f in cls.model_fields.items()]


def format_validation_error(
    err: ValidationError,
    source: str | None = None,
    limit: int = 1,
    model: type[BaseModel] | None = None,
) -> str:
    """Return the first ``limit`` problems of a pydantic error as one line each.

    Parameters
    ----------
    err
        The pydantic validation error.
    source
        A file name to prefix the message with.
    limit
        How many problems to report (joined by ``"; "``).
    model
        The model that was validated; with it, an unknown key's message lists the allowed keys.
    """
    msgs = []
    for e in err.errors(include_url=False)[:limit]:
        path = _loc_to_path(tuple(e.get("loc", ())))
        kind = e.get("type", "")
        if kind == "extra_forbidden":
            msg = f"unknown key '{path}'"
            allowed = _allowed_keys(model, tuple(e.get("loc", ())))
            if allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        elif kind == "missing":
            msg = f"field '{path}' is required"
        else:
            value = e.get("input")
            text = e.get("msg", "invalid value")
            text = text.removeprefix("Value error, ")
            if kind == "value_error" and isinstance(value, dict):
                # a (sub)model's own check: its text names the fields (the input is the model)
                msg = text if path == "<root>" else f"{path}: {text}"
            else:
                msg = f"field '{path}' = {value!r}: {text}"
        msgs.append(msg)
    line = "; ".join(msgs)
    return f"{source}: {line}" if source else line


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning missing files and syntax errors into :class:`InputError`."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text: {exc.reason}") from None


def load_toml_model(path: str | Path, model: type[M]) -> M:
    """Read a TOML file and validate it as ``model``; any problem becomes an :class:`InputError`."""
    data = read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source=str(path), model=model)) from None
