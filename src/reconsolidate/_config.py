"""Strict configuration models and one-line error messages for pydantic validation.

Every configuration file (regimens, paradigms, trial specs, calibration targets, trigger
mappings) is a pydantic model derived from :class:`StrictModel`: unknown keys are rejected, values
are validated where they enter and are not converted between types (``"120"`` or ``7.0`` for an
integer is an error, not 120 or 7). A :class:`pydantic.ValidationError` is turned into a single
line that names the field path, the value received and what is allowed, so that the command line
never shows a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import CoreSchema

from reconsolidate.exceptions import InputError

__all__ = ["StrictModel", "format_validation_error", "load_toml_model", "read_toml"]

M = TypeVar("M", bound=BaseModel)


def _lists_for_tuples(node: Any) -> None:
    """Let every tuple of a core schema take a list (TOML and JSON have arrays, not tuples).

    pydantic's strict mode accepts only a ``tuple`` for a tuple field; the items keep the
    model's strictness (``[1, "2"]`` for ``tuple[int, int]`` is still an error).
    """
    if isinstance(node, dict):
        if node.get("type") == "tuple":
            node["strict"] = False
        for value in node.values():
            _lists_for_tuples(value)
    elif isinstance(node, list):
        for value in node:
            _lists_for_tuples(value)


def _plain_scalars(value: Any) -> Any:
    """``value`` with numpy scalars (``np.int64(100)``, ``np.float64``, ``np.bool_``) turned
    into the Python scalars they stand for, in nested dicts and lists: the Python API takes
    numbers computed with numpy, which strict mode would refuse as "not an integer"."""
    if isinstance(value, dict):
        return {k: _plain_scalars(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain_scalars(v) for v in value)
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return item()
    return value


class StrictModel(BaseModel):
    """Base of all configuration models: unknown keys are errors, instances are immutable, and
    values are not coerced between types.

    pydantic's strict mode: an integer field takes only an integer (not ``"7"``, ``7.0`` or
    ``true``), a number field an integer or a float (not ``"5"``), a boolean only ``true`` or
    ``false``, a string only a string. Lists are accepted for tuple fields (TOML has arrays).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, strict=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars(cls, data: Any) -> Any:
        return _plain_scalars(data)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler, /
    ) -> CoreSchema:
        schema = handler(source)
        _lists_for_tuples(schema)
        return schema


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


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``(annotation without Annotated / None, is a discriminated union)``."""
    discriminated = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            args = get_args(annotation)
            discriminated |= any(
                isinstance(m, FieldInfo) and m.discriminator is not None for m in args[1:]
            )
            annotation = args[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation, discriminated
            annotation = members[0]
        else:
            return annotation, discriminated


def _tagged_member(annotation: Any, tag: str) -> Any:
    """The model of a discriminated union whose Literal discriminator takes the value ``tag``."""
    for member in get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for f in member.model_fields.values():
                if get_origin(f.annotation) is Literal and tag in get_args(f.annotation):
                    return member
    return None


def _step(annotation: Any, part: Any) -> tuple[Any, bool]:
    """The annotation one location part further in, and whether it is a discriminated union."""
    ann, _ = _unwrap(annotation)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        field = ann.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None, False
        disc = _unwrap(field.annotation)[1]
        return field.annotation, disc or field.discriminator is not None
    args = get_args(ann)
    origin = get_origin(ann)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
        return args[0], _unwrap(args[0])[1]
    if origin is dict and len(args) == 2:
        return args[1], _unwrap(args[1])[1]
    return None, False


def _user_loc(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
    """``loc`` without the tags of discriminated unions, and the annotation holding its last part.

    pydantic puts the tag of a discriminated union into the location
    (``cohort.weight_kg_male.normal.sd``); the user wrote ``cohort.weight_kg_male.sd``.
    """
    if model is None:
        return loc, None
    out: list[Any] = []
    ann: Any = model
    parent: Any = model
    tag_next = False
    for part in loc:
        if tag_next and isinstance(part, str):
            member = _tagged_member(_unwrap(ann)[0], part)
            if member is not None:
                ann, tag_next = member, False
                continue
        tag_next = False
        out.append(part)
        parent = ann
        if ann is not None:
            ann, tag_next = _step(ann, part)
    return tuple(out), parent


def _allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str] | None:
    """Field names of the (sub)model that holds the unknown key at ``loc``, or None if unknown."""
    if model is None:
        return None
    _, parent = _user_loc(model, loc)
    cls, _ = _unwrap(parent)
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        return None
    return [f.alias or name for name, f in cls.model_fields.items()]


#: What is allowed, for pydantic's type errors (strict mode: no conversion between types).
_EXPECTED = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list (a TOML array)",
    "tuple_type": "must be a list (a TOML array)",
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def _allowed_text(kind: str, text: str, ctx: dict[str, Any] | None = None) -> str:
    """pydantic's message about a value, worded as what is allowed (``must be an integer``,
    ``must be greater than 0`` for ``Input should be greater than 0``)."""
    ctx = ctx or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "string_pattern_mismatch" and "pattern" in ctx:
        return f"must match the pattern {ctx['pattern']}"
    if kind == "too_short" and "min_length" in ctx:
        n = ctx["min_length"]
        return f"must have at least {n} item{'s' if n != 1 else ''}"
    if kind == "union_tag_invalid" and "expected_tags" in ctx:
        return (f"{str(ctx.get('discriminator', 'tag')).strip(chr(39))} = "
                f"{ctx.get('tag')!r} is not known; allowed: {ctx['expected_tags']}")
    if text.startswith("Input should be "):
        return "must be " + text.removeprefix("Input should be ")
    return text


def format_validation_error(
    err: ValidationError,
    source: str | None = None,
    limit: int = 1,
    model: type[BaseModel] | None = None,
    root: str = "",
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
        The model that was validated; with it, an unknown key's message lists the allowed keys
        and the tags of discriminated unions are left out of the field path.
    root
        The dotted path of the validated table inside a larger file (an inline regimen of a
        trial spec: ``protocols.P.sessions[0].regimen``), put in front of every field path.

    Every message carries the full dotted field path from the root of the file
    (``cohort.weight_kg_male.sd``, ``protocols.ket.sessions[0].regimen``): a check of a whole
    (sub)model is prefixed with its path.
    """
    msgs = []
    for e in err.errors(include_url=False)[:limit]:
        loc = tuple(e.get("loc", ()))
        path = _loc_to_path(_user_loc(model, loc)[0])
        if root:
            path = root if path == "<root>" else root + ("" if path[0] == "[" else ".") + path
        kind = e.get("type", "")
        if kind == "extra_forbidden":
            msg = f"unknown key '{path}'"
            allowed = _allowed_keys(model, loc)
            if allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        elif kind == "missing":
            msg = f"field '{path}' is required"
        else:
            value = e.get("input")
            text = e.get("msg", "invalid value")
            text = text.removeprefix("Value error, ")
            if kind == "value_error" and isinstance(value, dict):
                # a (sub)model's own check: its text names the fields (the input is the model),
                # prefixed with the submodel's path unless the text already starts with it
                named = path == "<root>" or text.startswith((f"{path}.", f"{path}:"))
                if root and text.startswith("unknown key '"):  # a check's own unknown key
                    msg = f"unknown key '{path}." + text.removeprefix("unknown key '")
                else:
                    msg = text if named else f"{path}: {text}"
            else:
                msg = f"field '{path}' = {value!r}: {_allowed_text(kind, text, e.get('ctx'))}"
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
