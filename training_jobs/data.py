"""Reading, cleaning, de-duplicating, splitting and sampling the UCI News Aggregator data.

Reads the raw headerless newsCorpora.csv and the header-row TSVs (docs/training.md); every problem is a
`DataError` naming the file and line. `stream_rows` reads the same formats row by row for files too large to hold.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO, TypeVar

from model.artifact import read_metadata
from model.encoders import file_sha256
from model.labels import CATEGORY_TO_LABEL
from training_jobs.config import splits_dir
from training_jobs.holdout import choose_judge, is_held_out

UCI_COLUMNS = ("id", "title", "url", "publisher", "category", "story", "hostname", "timestamp")
REQUIRED_COLUMNS = ("category", "title")
SPLIT_FILES = ("train.tsv", "valid.tsv", "test.tsv")
_SPACE = re.compile(r"\s+")
HEADED, UCI = "headed", "uci"
# Undecodable bytes read with errors="surrogateescape" become these code points; valid UTF-8 never does.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
RowT = TypeVar("RowT")


class DataError(ValueError):
    """Bad input data; the message names the file and, where it applies, the line."""


@dataclass(frozen=True)
class Example:
    title: str
    category: str
    publisher: str = ""
    story: str = ""  # the UCI story id: the rows of one news story share it


@dataclass
class CleanStats:
    read: int = 0
    empty_titles: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0

    @property
    def kept(self) -> int:
        return self.read - self.empty_titles - self.duplicates


@dataclass
class Splits:
    train: list[Example]
    valid: list[Example]
    test: list[Example]
    source: str
    stats: dict[str, CleanStats] = field(default_factory=dict)
    held_out: list[Example] = field(default_factory=list)  # rows of held-out publishers (training_jobs.holdout)
    judge: list[Example] = field(default_factory=list)  # the story-disjoint judge (training_jobs.holdout)
    judge_stats: dict[str, Any] = field(default_factory=dict)
    # Rows that cross the judge's sides (a judged story, a publisher that trains): they neither train nor judge.
    left_out: list[Example] = field(default_factory=list)
    # From one data file: the rows taken (`rows` of the `of` left after cleaning), the seed, the file and its SHA-256.
    sample: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """SHA-256 over every (split, category, title): identifies the exact training data."""
        digest = hashlib.sha256()
        parts = [("train", self.train), ("valid", self.valid), ("test", self.test)]
        for name, examples in parts + [(name, rows) for name, rows in (("held_out", self.held_out),
                                                                        ("judge", self.judge)) if rows]:
            for ex in examples:
                digest.update(f"{name}\t{ex.category}\t{ex.title}\n".encode())
        return digest.hexdigest()


def collapse_whitespace(title: str) -> str:
    """Every run of Unicode whitespace (tabs, line and paragraph separators too) as one space, ends stripped."""
    return _SPACE.sub(" ", title).strip()


def normalise_title(title: str) -> str:
    """The de-duplication key: lowercased, quotes removed, whitespace collapsed (as in SOURCES.md)."""
    return collapse_whitespace(title.replace('"', "")).lower()


def _decode(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte {raw[exc.start]:#04x}); convert the file to UTF-8") from exc


def _check_category(path: Path, line: int, code: str) -> str:
    code = code.strip()
    if code not in CATEGORY_TO_LABEL:
        raise DataError(f"{path}:{line}: unknown category code {code!r}; expected one of {sorted(CATEGORY_TO_LABEL)}")
    return code


@dataclass(frozen=True)
class TableFormat:
    """What the first line says about a file: headed (with its delimiter) or raw UCI."""

    kind: str
    delimiter: str = "\t"


def header_columns(first_line: str, delimiter: str) -> list[str]:
    return [c.strip().lower() for c in next(csv.reader([first_line], delimiter=delimiter), [])]


def sniff_table(path: Path, first_line: str) -> TableFormat:
    """Headed when the first line names `title` or `category` (tab-separated, else comma-separated); raw UCI when
    it has the 8 tab-separated columns of newsCorpora.csv."""
    first = first_line.rstrip("\r\n")
    delimiter = "\t" if "\t" in first or "," not in first else ","
    header = header_columns(first, delimiter)
    if "title" in header or "category" in header:
        return TableFormat(HEADED, delimiter)
    if len(first.split("\t")) == len(UCI_COLUMNS):
        return TableFormat(UCI)
    raise DataError(f"{path}:1: unrecognised format: expected a header row with columns "
                    f"{list(REQUIRED_COLUMNS)} or the {len(UCI_COLUMNS)} tab-separated columns of newsCorpora.csv")


def _read_headed(path: Path, lines: list[str], delimiter: str = "\t") -> Iterable[Example]:
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}:1: missing column(s) {missing}; header has {header}")
    idx = {name: header.index(name) for name in header}
    for row in reader:
        if not row:
            continue
        line = reader.line_num
        if len(row) < len(header):
            raise DataError(f"{path}:{line}: {len(row)} column(s), header has {len(header)}")
        publisher, story = (row[idx[name]] if name in idx else "" for name in ("publisher", "story"))
        yield Example(row[idx["title"]], _check_category(path, line, row[idx["category"]]), publisher, story)


def _read_uci(path: Path, lines: list[str]) -> Iterable[Example]:
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    title, publisher, category, story = (UCI_COLUMNS.index(c) for c in ("title", "publisher", "category", "story"))
    for row in reader:
        if not row:
            continue
        if len(row) != len(UCI_COLUMNS):
            raise DataError(f"{path}:{reader.line_num}: {len(row)} column(s); newsCorpora.csv rows have "
                            f"{len(UCI_COLUMNS)} ({', '.join(UCI_COLUMNS).upper()})")
        yield Example(row[title], _check_category(path, reader.line_num, row[category]), row[publisher], row[story])


def read_examples(path: Path) -> list[Example]:
    """Read one file in either format (optionally gzipped), detected from its first line."""
    path = Path(path)
    lines = _decode(path).splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: empty file")
    table = sniff_table(path, lines[0])
    if table.kind == HEADED:
        examples = list(_read_headed(path, lines, table.delimiter))
    else:
        examples = list(_read_uci(path, lines))
    if not examples:
        raise DataError(f"{path}: no data rows")
    return examples


@dataclass(frozen=True)
class Row:
    """One row of a file read by `stream_table`: its first line, its fields, and why it is bad (None if it is not)."""

    line: int
    fields: list[str]
    problem: str | None = None


def open_text(path: Path, mode: str = "r") -> TextIO:
    """A file (gzipped when named .gz) as UTF-8 text for the csv module; on reading, undecodable bytes are kept
    as escapes (see `undecodable`) so that one bad row does not stop a whole file."""
    path = Path(path)
    errors = "surrogateescape" if mode == "r" else "strict"
    encoding = "utf-8-sig" if mode == "r" else "utf-8"
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding=encoding, errors=errors, newline="")
    return open(path, mode, encoding=encoding, errors=errors, newline="")


def undecodable(fields: Sequence[str]) -> str | None:
    """The reason a row read by `open_text` is not UTF-8, naming the first bad byte; None when it is."""
    for value in fields:
        match = _ESCAPED_BYTE.search(value)
        if match:
            return f"not UTF-8 (byte {ord(match.group()) - 0xDC00:#04x})"
    return None


def read_header(table: TableFormat, first_line: str) -> list[str] | None:
    """The column names of a headed file as written (None for raw UCI, which has no header row)."""
    return next(csv.reader([first_line], delimiter=table.delimiter)) if table.kind == HEADED else None


def stream_rows(table: TableFormat, lines: Iterable[str], header: Sequence[str] | None) -> Iterator[Row]:
    """The rows of the lines after a headed file's header (raw UCI: all lines), one at a time.

    A row is bad when it holds undecodable bytes or has another column count than the header (raw UCI: 8).
    """
    if table.kind == HEADED:
        return _stream_headed(lines, table.delimiter, len(header or ()))
    return _stream_uci(lines)


def _stream_headed(lines: Iterable[str], delimiter: str, width: int) -> Iterator[Row]:
    reader = csv.reader(lines, delimiter=delimiter)
    line = 2
    for fields in reader:
        if fields:
            problem = undecodable(fields) or (
                f"wrong column count: {len(fields)}, the header has {width}" if len(fields) != width else None)
            yield Row(line, fields, problem)
        line = reader.line_num + 2


def _stream_uci(lines: Iterable[str]) -> Iterator[Row]:
    for line, text in enumerate(lines, start=1):
        text = text.rstrip("\r\n")
        if not text:
            continue
        fields = text.split("\t")
        problem = undecodable(fields) or (
            f"wrong column count: {len(fields)}, newsCorpora.csv rows have {len(UCI_COLUMNS)}"
            if len(fields) != len(UCI_COLUMNS) else None)
        yield Row(line, fields, problem)


def clean(examples: Sequence[Example], dedupe: bool = True) -> tuple[list[Example], CleanStats]:
    """Collapse whitespace, drop empty titles and (by default) keep the first of each normalised title."""
    stats = CleanStats(read=len(examples))
    seen: dict[str, str] = {}
    kept: list[Example] = []
    for ex in examples:
        title = collapse_whitespace(ex.title)
        if not title:
            stats.empty_titles += 1
            continue
        key = normalise_title(title)
        if dedupe and key in seen:
            stats.duplicates += 1
            stats.conflicting_duplicates += seen[key] != ex.category
            continue
        seen[key] = ex.category
        kept.append(replace(ex, title=title))
    return kept, stats


def split(examples: Sequence[Example], seed: int, valid: float = 0.1, test: float = 0.1,
          ) -> tuple[list[Example], list[Example], list[Example]]:
    """Stratified split with a fixed seed; titles are grouped by normalised form so none spans two splits."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(normalise_title(ex.title), []).append(ex)
    by_category: dict[str, list[list[Example]]] = {}
    for group in groups.values():
        by_category.setdefault(group[0].category, []).append(group)
    rng = random.Random(seed)
    parts: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for category in sorted(by_category):
        members = by_category[category]
        rng.shuffle(members)
        n_test, n_valid = round(len(members) * test), round(len(members) * valid)
        for i, group in enumerate(members):
            part = 2 if i < n_test else 1 if i < n_test + n_valid else 0
            parts[part].extend(group)
    for part in parts:
        rng.shuffle(part)
    return parts


def stratified_sample(rows: Sequence[RowT], size: int, seed: int, category: Callable[[RowT], str]) -> list[RowT]:
    """`size` of `rows` drawn with `seed`, each category keeping its share (largest remainders), in their order.

    Whole rows are kept, whatever columns they carry (publisher, story...), so that other sets can be carved from the
    same corpus before or after. All rows when there are no more than `size`.
    """
    if size >= len(rows):
        return list(rows)
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(category(row), []).append(index)
    exact = {code: size * len(members) / len(rows) for code, members in groups.items()}
    quota = {code: int(share) for code, share in exact.items()}
    for code in sorted(groups, key=lambda c: (quota[c] - exact[c], c))[:size - sum(quota.values())]:
        quota[code] += 1
    rng = random.Random(seed)
    return [rows[i] for i in sorted(i for code in sorted(groups) for i in rng.sample(groups[code], quota[code]))]


def _benchmark_dir(data: Path) -> Path | None:
    for candidate in (data, splits_dir(data)):
        if all((candidate / name).is_file() for name in SPLIT_FILES):
            return candidate
    return None


def _data_file(data: Path) -> Path | None:
    """`data` when it is a file, or the one file of a folder (a SageMaker channel holding newsCorpora.csv)."""
    if data.is_file():
        return data
    entries = [path for path in data.iterdir() if not path.name.startswith(".")] if data.is_dir() else []
    return entries[0] if len(entries) == 1 and entries[0].is_file() else None


def _split_file(path: Path, seed: int, sample: int) -> Splits:
    """One file cleaned and split; then, with `sample` below its rows, every part cut to the same share by
    `stratified_sample`.

    Splitting first nests every sample in the whole file's split: a sampled model never trained on a title of the
    full test split, and leakage checks run on the full split (feedback, retraining) cover its valid and test.
    """
    examples, stats = clean(read_examples(path))
    parts = list(split(examples, seed))
    rows = len(examples)
    source = f"{path} (split with seed {seed})"
    if 0 < sample < rows:
        parts = [stratified_sample(part, round(len(part) * sample / rows), seed, _category) for part in parts]
        source = f"{path} (split with seed {seed}; a {sample:,}-row sample of its {rows:,})"
    record = {"rows": sample if 0 < sample < rows else rows, "of": rows, "seed": seed, "file": path.name,
              "file_sha256": file_sha256(path)}
    return Splits(parts[0], parts[1], parts[2], source, {path.name: stats}, sample=record)


def _category(example: Example) -> str:
    return example.category


def load_splits(data: Path, seed: int, extra: Sequence[Path] = (), holdout_share: float = 0.0,
                judge_share: float = 0.0, sample: int = 0) -> Splits:
    """Train/valid/test from a folder holding the NLP-100 split (used as-is) or from one file (split here, and
    cut to a `sample` of its rows when that is set and smaller: see `_split_file`).

    `extra` files add training rows only; any title also in valid or test is dropped from them so
    that the held-out scores stay honest. Then `judge_share` of the candidate stories leave train and valid as the
    story-disjoint judge (`_carve`), and rows of held-out publishers (`holdout_share`, see training_jobs.holdout)
    leave every split for `held_out`, minus titles the splits already hold.
    """
    data = Path(data)
    bench = _benchmark_dir(data) if data.is_dir() else None
    if bench is not None:
        loaded, stats = {}, {}
        for name in SPLIT_FILES:
            loaded[name], stats[name] = clean(read_examples(bench / name), dedupe=False)
        splits = Splits(loaded["train.tsv"], loaded["valid.tsv"], loaded["test.tsv"], f"{bench} (NLP-100 split)", stats)
    elif (path := _data_file(data)) is not None:
        splits = _split_file(path, seed, sample)
    else:
        raise DataError(f"{data}: neither a data file nor a folder holding {', '.join(SPLIT_FILES)} or one data file")
    _add_extra(splits, extra)
    splits.judge, kept = _carve(splits.train + splits.valid, judge_share, splits)
    held_out: list[Example] = []
    splits.train, splits.valid = _kept(splits.train, kept), _kept(splits.valid, kept)
    splits.train, splits.valid, splits.test = (_keep_publishers(part, holdout_share, held_out)
                                               for part in (splits.train, splits.valid, splits.test))
    taken = {normalise_title(ex.title) for ex in splits.train + splits.valid + splits.test + splits.judge}
    splits.held_out = _unique_titles(ex for ex in splits.held_out + held_out if normalise_title(ex.title) not in taken)
    if holdout_share:
        splits.source += f" - publishers held out at share {holdout_share:g}"
    random.Random(seed).shuffle(splits.train)
    return splits


def _add_extra(splits: Splits, extra: Sequence[Path]) -> None:
    """Append the extra files' rows to train, minus titles any split already holds."""
    known = {normalise_title(ex.title) for ex in splits.train + splits.valid + splits.test}
    for path in extra:
        rows, stats = clean(read_examples(Path(path)))
        fresh = [ex for ex in rows if normalise_title(ex.title) not in known]
        stats.duplicates += len(rows) - len(fresh)
        known.update(normalise_title(ex.title) for ex in fresh)
        splits.train.extend(fresh)
        splits.stats[Path(path).name] = stats
        splits.source += f" + train rows from {path}"


def _carve(pool: Sequence[Example], share: float, splits: Splits) -> tuple[list[Example], list[Example]]:
    """(the judge, the rows that may still train) of a pool: whole judged stories and their publishers leave it.

    The judge publishers' rows of other stories go to `splits.held_out` (other publishers, stories training saw);
    rows that cross the sides are left out; rows with no story id stay unless their title is judged. Counts land in
    `splits.judge_stats`.
    """
    if not share:
        return [], list(pool)
    judge_rule = choose_judge(pool, share)
    judge = _unique_titles([ex for ex in pool if judge_rule.judges(ex)])
    judged = {normalise_title(ex.title) for ex in judge}
    kept = [ex for ex in pool if judge_rule.may_train(ex) and normalise_title(ex.title) not in judged]
    held_out = [ex for ex in pool if judge_rule.holds_out_publisher(ex)]
    splits.held_out += held_out
    placed = {id(ex) for ex in kept + judge + held_out}
    splits.left_out = [ex for ex in pool if id(ex) not in placed]
    splits.judge_stats = {"share": share, "sha256": _fingerprint(judge), "stories": len({ex.story for ex in judge}),
                          "publishers": len(judge_rule.publishers), "rows": len(judge),
                          "left_out": len(pool) - len(kept) - len(judge) - len(held_out),
                          "trained_without_story_id": sum(not ex.story for ex in kept)}
    splits.source += f" - story-disjoint judge at share {share:g}"
    return judge, kept


def _fingerprint(examples: Iterable[Example]) -> str:
    """SHA-256 over the sorted (category, normalised title) pairs: the same set gives the same digest."""
    lines = sorted(f"{ex.category}\t{normalise_title(ex.title)}\n" for ex in examples)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _kept(examples: Sequence[Example], kept: Sequence[Example]) -> list[Example]:
    ids = {id(ex) for ex in kept}
    return [ex for ex in examples if id(ex) in ids]


def _unique_titles(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    unique = []
    for ex in examples:
        key = normalise_title(ex.title)
        if key not in seen:
            seen.add(key)
            unique.append(ex)
    return unique


def splits_of_model(model_dir: Path, data: Path) -> Splits:
    """The splits a model folder was trained on: its recorded seed, sample, extra files, judge, publisher hold-out and
    row limit applied to `data`; a DataError when the judge rebuilt there is not the one the model recorded."""
    metadata = read_metadata(model_dir)
    hyperparameters, recorded = metadata["hyperparameters"], metadata.get("data", {})
    extra = [_locate_extra(Path(path), Path(data)) for path in recorded.get("extra_data", [])]
    splits = load_splits(data, hyperparameters["seed"], extra, hyperparameters.get("holdout_publishers", 0.0),
                         hyperparameters.get("judge_stories", 0.0), recorded_sample(metadata))
    if recorded.get("limit"):
        splits.train = splits.train[: recorded["limit"]]  # as train.py --limit cut it: its calibration rows follow
    expected = recorded.get("judge", {}).get("sha256")
    if expected and splits.judge_stats["sha256"] != expected:
        raise DataError(f"{data}: the story-disjoint judge rebuilt from this data is not the one {model_dir} was "
                        "trained without; pass the data (and extra files) it was trained on")
    return splits


def _locate_extra(path: Path, data: Path) -> Path:
    """A recorded extra file: where training read it, else the file of that name in the data folder."""
    for candidate in (path, (data if data.is_dir() else data.parent) / path.name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{path}: the model was also trained on this file; pass the data folder that holds it")


def recorded_sample(metadata: dict[str, Any]) -> int:
    """The sample size a model's training.json records (0: every row)."""
    sample = metadata.get("data", {}).get("sample") or {}
    return sample["rows"] if sample and sample["rows"] < sample["of"] else 0


def _keep_publishers(examples: Sequence[Example], share: float, held_out: list[Example]) -> list[Example]:
    """The rows that may train or be a split; those of held-out publishers are appended to `held_out`."""
    kept = []
    for ex in examples:
        (held_out if is_held_out(ex.publisher, share) else kept).append(ex)
    return kept


def category_counts(examples: Iterable[Example]) -> dict[str, int]:
    counts = Counter(ex.category for ex in examples)
    return {code: counts.get(code, 0) for code in CATEGORY_TO_LABEL}
