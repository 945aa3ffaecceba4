"""ppo.py's trials from wandb as plotting.source.Run records: offline run folders, or a project online.

Offline, wandb writes each run to ``wandb/offline-run-*/run-<id>.wandb``: a 7-byte header (":W&B", magic
0xBEE1, version 0) and then LevelDB's log format (32 KiB blocks; each record piece has a 7-byte header:
checksum, little-endian length, type FULL/FIRST/MIDDLE/LAST) whose records are wandb's protobuf
``Record`` messages. Read here without network: the run record (config, group), config updates and the
history rows. Checksums are not verified; a truncated last record (a run still writing) is dropped.
"""

import json
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from plotting.source import HISTORY_KEYS, OPTIONAL_KEYS, NoResultsError, Run
from results_schema import INTERNALS

HEADER = b":W&B\xe1\xbe\x00"
BLOCK = 32 * 1024
PIECE_HEADER = struct.Struct("<IHB")  # checksum, length, type
FULL, FIRST, LAST = 1, 2, 4  # piece types (3, MIDDLE, is appended like any piece; 0 is padding)


def wandb_runs(spec: str, group: str | None = None) -> Iterable[Run]:
    """Runs of an offline folder (if ``spec`` is an existing path) or of the project ``[entity/]project``."""
    if Path(spec).exists():
        return offline_runs(Path(spec), group)
    return online_runs(spec, group)


def offline_runs(folder: Path, group: str | None = None) -> Iterator[Run]:
    """Every run in the .wandb files under ``folder`` (of experiment ``group`` only, if given)."""
    for path in sorted({path.resolve() for path in folder.rglob("run-*.wandb")}):
        run_group, run = offline_run(path)
        if group is None or run_group == group:
            yield run


def offline_run(path: Path) -> tuple[str, Run]:
    """The group and the run of one .wandb file."""
    from wandb.proto.wandb_internal_pb2 import Record

    group, config, rows = "", {}, []
    for payload in log_records(path):
        record = Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            group = record.run.run_group
            config |= decoded(record.run.config.update)
        elif kind == "config":
            config |= decoded(record.config.update)
        elif kind == "history":
            rows.append(decoded(record.history.item, wanted))
    return group, Run(config, pd.DataFrame(rows))


def decoded(entries: Iterable, keep: Callable[[str], bool] = lambda key: True) -> dict:
    """Config or history items (key, or nested key joined with "/"; a JSON value) -> dict of the kept keys."""
    named = ((entry.key or "/".join(entry.nested_key), entry.value_json) for entry in entries)
    return {key: json.loads(value) for key, value in named if keep(key)}


def log_records(path: Path) -> Iterator[bytes]:
    """The records of a .wandb file, joined from their pieces."""
    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise NoResultsError(f"{path} is no wandb run file (header {data[:7]!r})")
    position, pieces = len(HEADER), []
    while position + PIECE_HEADER.size <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < PIECE_HEADER.size:  # a block's zero-filled trailer
            position += left_in_block
            continue
        _, length, kind = PIECE_HEADER.unpack_from(data, position)
        start, position = position + PIECE_HEADER.size, position + PIECE_HEADER.size + length
        if position > len(data):
            return
        if kind in (FULL, FIRST):
            pieces = []
        pieces.append(data[start:position])
        if kind in (FULL, LAST):
            yield b"".join(pieces)


def wanted(key: str) -> bool:
    """The history keys the tidy table reads."""
    return key in HISTORY_KEYS or key in OPTIONAL_KEYS or key.startswith(INTERNALS)


def online_runs(project: str, group: str | None = None) -> Iterator[Run]:
    """Every run of ``[entity/]project`` (of group ``group`` only, if given) through wandb's public API."""
    import requests
    import wandb

    try:
        runs = wandb.Api(timeout=60).runs(project, filters={"group": group} if group else None)
        for run in runs:
            yield api_run(run)
    except (wandb.errors.Error, requests.RequestException, ValueError) as error:
        raise NoResultsError(f"wandb project {project!r} cannot be read (and no such folder exists): {error}") from None


def api_run(run) -> Run:
    """A public-API run -> Run: its config, and its full history of the keys plotting reads."""
    keys = [key for key in run.summary_metrics if wanted(key)]
    history = pd.DataFrame(run.scan_history(keys=keys)) if set(HISTORY_KEYS) <= set(keys) else pd.DataFrame()
    return Run(dict(run.config), history)
