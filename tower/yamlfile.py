"""Loading a YAML file into a pydantic model, with every problem reported as `file:line: path: problem`;
writing one that holds secrets (hashes of passwords and tokens)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

from tower.timeutil import parse_duration_ms

Model = TypeVar("Model", bound=BaseModel)


def _offset_ms(value: object) -> int:
    text = str(value).strip()
    return -parse_duration_ms(text[1:]) if text.startswith("-") else parse_duration_ms(text.lstrip("+"))


# Field types for times written in files: "90s", "15m", "2h", "7d" (Offset may be negative: "-2d").
Duration = Annotated[int, BeforeValidator(lambda value: parse_duration_ms(str(value)))]
Offset = Annotated[int, BeforeValidator(_offset_ms)]


class FileError(ValueError):
    """A file that cannot be used; the message names file, line and problem."""


class Located(ValueError):
    """Raised by a model validator for a problem at a known path (so its line can be found)."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path


def load_model(path: Path, model: type[Model], what: str, error: type[FileError] = FileError) -> Model:
    try:
        text = path.read_text()
    except OSError as problem:
        raise error(f"{path}: cannot read {what}: {problem.strerror}") from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: not valid YAML: {getattr(problem, 'problem', problem)}") from None
    if not isinstance(data, dict):
        raise error(f"{path}:1: a {what} is a YAML mapping")
    try:
        return model.model_validate(data)
    except ValidationError as problem:
        first = problem.errors(include_url=False)[0]
        located = first.get("ctx", {}).get("error")
        loc = located.path if isinstance(located, Located) else first["loc"]
        location = ".".join(str(part) for part in loc)
        message = first["msg"].removeprefix("Value error, ")
        raise error(f"{path}:{_line_of(node, loc)}: {location + ': ' if location else ''}{message}") from None


def file_state(path: Path) -> tuple[int, int]:
    """What tells a file changed (modification time, size) for readers that re-read it on change;
    (0, 0) if it does not exist. OSError if it cannot be looked at."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def write_private(path: Path, header: str, model: BaseModel) -> None:
    """Replace the file in one step (a reader never sees half of it), readable by its owner only;
    `header` is the comment on top (what the file holds and which command manages it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# {header}\n" + yaml.safe_dump(model.model_dump(mode="json", exclude_none=True), sort_keys=False)
    partial = path.with_name(f".{path.name}.tmp")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def _line_of(node: yaml.Node | None, loc: tuple) -> int:
    """The line of the deepest YAML node on the error's path."""
    line = node.start_mark.line + 1 if node else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
