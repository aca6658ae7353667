"""Master data from files: the network file (YAML; a scenario file serves too, its simulation keys
ignored) and shipment CSV files for `tower shipments import`. Problems come back as
`file:line: problem`, every one of them for a CSV file, so a planner fixes a file in one go.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from pydantic import ValidationError

from tower.masterdata.model import Network, Shipment
from tower.yamlfile import FileError, load_model

CSV_COLUMNS = ("id", "tracker", "lane", "origin", "destination", "via", "cargo", "departure", "promised", "status",
               "order", "customer", "note")  # fmt: skip
REFERENCE_PREFIX = "ref:"  # ref:po, ref:booking ... columns become the shipment's references
MAX_PROBLEMS = 20


class NetworkFileError(FileError):
    """A network file that cannot be used; the message names file, line and problem."""


def load_network_file(path: Path | str) -> Network:
    """The network a file describes; a scenario file (network + shipments + faults) gives its network."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, ValueError):
        document = None  # load_model reports what is wrong with it, with the line
    keys = set(document) if isinstance(document, dict) else set()
    if keys - set(Network.model_fields):
        from tower.scenario import Scenario, ScenarioError

        return load_model(path, Scenario, "scenario", ScenarioError).network()
    return load_model(path, Network, "network file", NetworkFileError)


def read_shipments_csv(path: Path | str, network: Network) -> list[Shipment]:
    """Every row as a shipment checked against the network; FileError listing each bad row's
    `file:line: problem` (up to MAX_PROBLEMS) if any row is bad."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as problem:
        raise FileError(f"{path}: cannot read shipments: {getattr(problem, 'strerror', None) or problem}") from None
    if not rows:
        raise FileError(f"{path}:1: no shipments; the header is {','.join(CSV_COLUMNS[:9])},... and one row each")
    unknown = [c for c in header if c not in CSV_COLUMNS and not str(c).startswith(REFERENCE_PREFIX)]
    if unknown:
        separator = " (the separator is a comma)" if any(";" in str(column) for column in unknown) else ""
        raise FileError(f"{path}:1: unknown column(s) {', '.join(map(str, unknown))}{separator}; use "
                        f"{', '.join(CSV_COLUMNS)} or {REFERENCE_PREFIX}<name>")  # fmt: skip
    shipments, problems, seen = [], [], {}
    for line, row in enumerate(rows, start=2):
        try:
            shipment = Shipment.model_validate(_shipment_fields(row))
        except (ValidationError, ValueError) as error:
            problems.append(f"{path}:{line}: {_describe(error)}")
            continue
        problem = network.problem_with(shipment)
        if shipment.id in seen:
            problem = f"shipment {shipment.id} is also on line {seen[shipment.id]}"
        if problem:
            problems.append(f"{path}:{line}: {problem}")
        seen[shipment.id] = line
        shipments.append(shipment)
    if problems:
        more = f"\n... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise FileError("\n".join(problems[:MAX_PROBLEMS]) + more)
    return shipments


def _shipment_fields(row: dict) -> dict:
    if None in row:
        raise ValueError("more cells than columns in the header")
    fields = {key: value.strip() for key, value in row.items() if key in CSV_COLUMNS and value and value.strip()}
    references = {key[len(REFERENCE_PREFIX) :]: value.strip() for key, value in row.items()
                  if key.startswith(REFERENCE_PREFIX) and value and value.strip()}  # fmt: skip
    if "via" in fields:
        fields["via"] = [_point(text) for text in fields["via"].split(";") if text.strip()]
    return {**fields, "references": references}


def _point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in text.split())
    except ValueError:
        raise ValueError(f"via point '{text.strip()}' is not 'lat lon' (points separated by ';')") from None
    return lat, lon


def _describe(error: Exception) -> str:
    if not isinstance(error, ValidationError):
        return str(error)
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"
