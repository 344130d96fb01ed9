"""Label every row of a file of headlines: a file in, the same file with labels out (`make classify-file`).

    python -m training_jobs.classify_file --model-dir artifacts/model --input test.tsv --output out.tsv

Streams in windows so memory stays flat, writes through a temporary file so a failed run leaves nothing, and sends
bad rows to OUTPUT.rejects. It reads training's formats, hence training_jobs/ (docs/serving.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import sys
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm.auto import tqdm

from model.labels import LabelMap
from model.runtime import AUTO, ONNX_INT8, RUNTIMES, Predictor, RuntimeUnavailableError, load_predictor, resolve_runtime
from training_jobs.data import (
    HEADED,
    UCI_COLUMNS,
    DataError,
    collapse_whitespace,
    open_text,
    read_header,
    sniff_table,
    stream_rows,
    undecodable,
)

JSON_LINES_SUFFIXES = {".jsonl", ".ndjson"}
TEXT_SUFFIXES = {".txt"}
TABLE_SUFFIXES = {".tsv", ".csv"}
TITLE_KEYS = ("headline", "inputs")  # what a JSON Lines record may call its headline (inputs: as the handler)
LABEL, MODEL_VERSION, SCORE_PREFIX, CATEGORY = "label", "model_version", "score_", "category"
REJECT_COLUMNS = ("line", "reason", "row")
WINDOW = 2048  # rows per model call: enough to length-sort well, small enough to keep memory flat
AHEAD = 2  # windows read, or waiting to be written, beyond the one the model runs


@dataclass
class Record:
    """One input row: where it starts, what to write back, its cleaned headline and its category, or why it is bad."""

    line: int
    raw: Any
    text: str
    title: str = ""
    category: str = ""
    problem: str | None = None


class Format:
    """How one input format is read into records and written back with the labels added."""

    name = ""

    def records(self, lines: Iterator[str]) -> Iterator[Record]:
        raise NotImplementedError

    def write_header(self, out: TextIO, added: Sequence[str]) -> None:
        """Nothing by default: only tables have a header."""

    def write(self, out: TextIO, record: Record, added: dict[str, Any]) -> None:
        raise NotImplementedError


def checked(record: Record) -> Record:
    """The record with its headline's whitespace collapsed, or rejected when nothing is left."""
    if record.problem is None:
        record.title = collapse_whitespace(record.title)
        if not record.title:
            record.problem = "empty title"
    return record


class Table(Format):
    """A TSV/CSV with a header row (`title` required, `category` optional) or the raw 8-column newsCorpora.csv."""

    def __init__(self, path: Path, first_line: str) -> None:
        self.table = sniff_table(path, first_line)
        self.header = read_header(self.table, first_line)
        self.name = ("raw newsCorpora.csv" if self.table.kind != HEADED
                     else "TSV" if self.table.delimiter == "\t" else "CSV")
        columns = [c.strip().lower() for c in self.header] if self.header else list(UCI_COLUMNS)
        if "title" not in columns:
            raise DataError(f"{path}:1: no `title` column; the header has {self.header}")
        clash = sorted({LABEL, MODEL_VERSION} & set(columns) | {c for c in columns if c.startswith(SCORE_PREFIX)})
        if clash:
            raise DataError(f"{path}:1: the input already has column(s) {clash}; rename or drop them")
        self.title = columns.index("title")
        self.category = columns.index(CATEGORY) if CATEGORY in columns else None

    def records(self, lines: Iterator[str]) -> Iterator[Record]:
        for row in stream_rows(self.table, lines, self.header):
            record = Record(row.line, row.fields, self.table.delimiter.join(row.fields), problem=row.problem)
            if row.problem is None:
                record.title = row.fields[self.title]
                record.category = row.fields[self.category] if self.category is not None else ""
            yield checked(record)

    def write_header(self, out: TextIO, added: Sequence[str]) -> None:
        if self.header is not None:
            csv.writer(out, delimiter=self.table.delimiter, lineterminator="\n").writerow([*self.header, *added])

    def write(self, out: TextIO, record: Record, added: dict[str, Any]) -> None:
        values = [*record.raw, *map(str, added.values())]
        if self.table.kind == HEADED:
            csv.writer(out, delimiter=self.table.delimiter, lineterminator="\n").writerow(values)
        else:  # raw newsCorpora.csv: no quoting, as it was read
            out.write("\t".join(values) + "\n")


class JsonLines(Format):
    """One JSON object per line with `headline` or `inputs`; written back with the labels as fields."""

    name = "JSON Lines"

    def records(self, lines: Iterator[str]) -> Iterator[Record]:
        for line, text in enumerate(lines, start=1):
            text = text.rstrip("\r\n")
            record = Record(line, None, text, problem=undecodable([text]))
            if record.problem is None:
                record.raw, record.title, record.category, record.problem = self.parse(text)
            yield checked(record)

    @staticmethod
    def parse(text: str) -> tuple[dict[str, Any] | None, str, str, str | None]:
        if not text.strip():
            return None, "", "", "blank line"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, "", "", f"not valid JSON: {exc}"
        key = next((k for k in TITLE_KEYS if isinstance(value, dict) and k in value), None)
        if key is None:
            return None, "", "", f"not a JSON object with {' or '.join(map(repr, TITLE_KEYS))}"
        title, category = value[key], value.get(CATEGORY, "")
        if not isinstance(title, str):
            return None, "", "", f"{key!r} is not a string"
        return value, title, category if isinstance(category, str) else "", None

    def write(self, out: TextIO, record: Record, added: dict[str, Any]) -> None:
        out.write(json.dumps({**record.raw, **added}, ensure_ascii=False) + "\n")


class PlainText(Format):
    """One headline per line; written as a TSV with a `title` column, since the labels need columns."""

    name = "plain text"

    def records(self, lines: Iterator[str]) -> Iterator[Record]:
        for line, text in enumerate(lines, start=1):
            text = text.rstrip("\r\n")
            yield checked(Record(line, text, text, text, problem=undecodable([text])))

    def write_header(self, out: TextIO, added: Sequence[str]) -> None:
        csv.writer(out, delimiter="\t", lineterminator="\n").writerow(["title", *added])

    def write(self, out: TextIO, record: Record, added: dict[str, Any]) -> None:
        csv.writer(out, delimiter="\t", lineterminator="\n").writerow([record.raw, *map(str, added.values())])


def detect_format(path: Path, first_line: str) -> Format:
    """By the name (.jsonl/.ndjson, .txt, .tsv/.csv; a .gz suffix aside), else by the first line: a JSON object,
    a table training can read, or else plain text."""
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    if suffix in JSON_LINES_SUFFIXES:
        return JsonLines()
    if suffix in TEXT_SUFFIXES:
        return PlainText()
    if suffix in TABLE_SUFFIXES:
        return Table(path, first_line)
    if first_line.lstrip().startswith("{"):
        return JsonLines()
    try:
        sniff_table(path, first_line)
    except DataError:
        return PlainText()
    return Table(path, first_line)


# --- the pipeline -------------------------------------------------------------------------------------------------

def read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Yield `items`, produced by a thread that stays at most `depth` items ahead; its errors are raised here."""
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(exc)

    thread = threading.Thread(target=produce, name="classify-file-reader", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def windows(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while window := list(islice(iterator, size)):
        yield window


@dataclass
class Tally:
    """What the summary reports, accumulated window by window (labels as small ints: flat for any file size)."""

    names: Sequence[str]
    rows: int = 0
    labelled: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    truth: array = field(default_factory=lambda: array("b"))
    predicted: array = field(default_factory=lambda: array("b"))
    unknown_categories: int = 0


def reason_kind(problem: str) -> str:
    """The reason without its details, to count rejects by: "not UTF-8 (byte 0xff)" -> "not UTF-8"."""
    return problem.split(" (")[0].split(":")[0]


def printable(text: str) -> str:
    """A rejected row as UTF-8 text: undecodable bytes shown as \\xNN escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Writer:
    """Writes windows in order on its own thread, the rows back with their labels and the bad rows to rejects."""

    def __init__(self, fmt: Format, out: TextIO, rejects: TextIO, labels: LabelMap, model_version: str) -> None:
        self.fmt, self.out, self.labels, self.model_version = fmt, out, labels, model_version
        self.rejects = csv.writer(rejects, delimiter="\t", lineterminator="\n")
        self.score_columns = [f"{SCORE_PREFIX}{name}" for name in labels.names]
        self.tally = Tally(labels.names)
        self.category_index = {**{c: i for i, c in enumerate(labels.categories)},
                               **{n: i for i, n in enumerate(labels.names)}}
        self.rejects.writerow(REJECT_COLUMNS)

    def start(self) -> None:
        self.fmt.write_header(self.out, [LABEL, MODEL_VERSION, *self.score_columns])

    def write_window(self, window: list[Record], probabilities: np.ndarray) -> None:
        scores = np.round(probabilities.astype(np.float64), 6).tolist()  # float64 first: 0.304229, not 0.30422899
        good = iter(zip(probabilities.argmax(axis=1).tolist(), scores, strict=True))
        tally = self.tally
        for record in window:
            tally.rows += 1
            if record.problem is not None:
                tally.rejected[reason_kind(record.problem)] += 1
                self.rejects.writerow([record.line, record.problem, printable(record.text)])
                continue
            index, row_scores = next(good)
            name = self.labels.names[index]
            tally.labelled[name] += 1
            self.fmt.write(self.out, record, {LABEL: name, MODEL_VERSION: self.model_version,
                                              **dict(zip(self.score_columns, row_scores, strict=True))})
            truth = self.category_index.get(record.category.strip()) if record.category else None
            if truth is not None:
                tally.truth.append(truth)
                tally.predicted.append(index)
            elif record.category:
                tally.unknown_categories += 1


def classify_stream(fmt: Format, lines: Iterator[str], predictor: Predictor, writer: Writer,
                    progress: Callable[[int], Any], window: int = WINDOW) -> Tally:
    """Read, predict and write in overlapping windows: the model never waits for parsing or writing."""
    writer.start()
    pending: deque[Future[None]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="classify-file-writer") as writing:
        for chunk in read_ahead(windows(fmt.records(lines), window), AHEAD):
            titles = [record.title for record in chunk if record.problem is None]
            probabilities = predictor.predict_proba(titles) if titles else np.empty((0, len(predictor.labels)))
            pending.append(writing.submit(writer.write_window, chunk, probabilities))
            while len(pending) > AHEAD or (pending and pending[0].done()):
                pending.popleft().result()
            progress(len(chunk))
        while pending:
            pending.popleft().result()
    return writer.tally


# --- the command --------------------------------------------------------------------------------------------------

@dataclass
class Summary:
    input: str
    output: str
    rejects: str
    format: str
    runtime: str
    model_version: str
    rows: int
    labelled: int
    rejected: int
    seconds: float
    headlines_per_s: float
    label_counts: dict[str, int]
    rejected_by_reason: dict[str, int]
    metrics: dict[str, Any] | None = None
    unknown_categories: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.labelled:,} of {self.rows:,} rows of {self.input} ({self.format}) labelled into {self.output} "
               f"in {self.seconds:.1f} s: {self.headlines_per_s:,.0f} headlines/s "
               f"({self.runtime}, model {self.model_version})",
               "labels: " + ", ".join(f"{name} {count:,}" for name, count in self.label_counts.items())]
        if self.rejected:
            reasons = ", ".join(f"{reason}: {count:,}" for reason, count in self.rejected_by_reason.items())
            out.append(f"rejected {self.rejected:,} rows ({reasons}): see {self.rejects}")
        else:
            out.append(f"rejected 0 rows ({self.rejects} has the header only)")
        if self.metrics is not None:
            metrics = self.metrics
            out.append(f"against the category column (n={metrics['n']:,}): accuracy {metrics['accuracy']:.4f}, "
                       f"macro-F1 {metrics['macro_f1']:.4f}")
        if self.unknown_categories:
            out.append(f"{self.unknown_categories:,} rows have a category that is no label of the model: not scored")
        return out


def metrics_of(tally: Tally) -> dict[str, Any] | None:
    """Accuracy and macro-F1 against the input's categories, as `make evaluate` computes them; None without any."""
    if not tally.truth:
        return None
    from training_jobs.evaluate import compute_metrics

    return compute_metrics(np.frombuffer(tally.truth, np.int8), np.frombuffer(tally.predicted, np.int8), tally.names)


def temporary_beside(path: Path) -> Path:
    """A hidden scratch name in the same folder (so the final rename is atomic), keeping a .gz suffix."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def classify_file(input_path: Path, output_path: Path, predictor: Predictor, runtime: str,
                  window: int = WINDOW, hide_progress: bool | None = None) -> Summary:
    """Label every row of `input_path` into `output_path` (and its bad rows into `<output>.rejects`)."""
    rejects_path = output_path.with_name(output_path.name + ".rejects")
    if output_path.resolve() == Path(input_path).resolve():
        raise DataError(f"{output_path}: the output would overwrite the input")
    temporary = {path: temporary_beside(path) for path in (output_path, rejects_path)}
    model_version = predictor.metadata["model_version"]
    try:
        with ExitStack() as files:
            try:
                source = files.enter_context(open_text(input_path))
            except FileNotFoundError as exc:
                raise DataError(f"{input_path}: no such file") from exc
            first_line = source.readline()
            if not first_line.strip():
                raise DataError(f"{input_path}: empty file (or an empty first line)")
            fmt = detect_format(Path(input_path), first_line)
            lines = source if isinstance(fmt, Table) and fmt.header is not None else chain([first_line], source)
            output_path.parent.mkdir(parents=True, exist_ok=True)
            out = files.enter_context(open_text(temporary[output_path], "w"))
            rejects = files.enter_context(open(temporary[rejects_path], "w", encoding="utf-8", newline=""))
            writer = Writer(fmt, out, rejects, predictor.labels, model_version)
            bar = files.enter_context(tqdm(desc=Path(input_path).name, unit=" headlines", disable=hide_progress,
                                           smoothing=0.1, dynamic_ncols=True))
            started = time.perf_counter()
            tally = classify_stream(fmt, lines, predictor, writer, bar.update, window)
        seconds = time.perf_counter() - started
        for path, scratch in temporary.items():
            os.replace(scratch, path)
    finally:
        for scratch in temporary.values():
            scratch.unlink(missing_ok=True)
    labelled = sum(tally.labelled.values())
    return Summary(str(input_path), str(output_path), str(rejects_path), fmt.name, runtime, model_version,
                   tally.rows, labelled, sum(tally.rejected.values()), seconds, labelled / seconds if seconds else 0.0,
                   {name: tally.labelled[name] for name in predictor.labels.names}, dict(tally.rejected),
                   metrics_of(tally), tally.unknown_categories)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="a model folder made by training_jobs.train")
    parser.add_argument("--input", type=Path, required=True, help="TSV/CSV, newsCorpora.csv, .jsonl or .txt (.gz too)")
    parser.add_argument("--output", type=Path, required=True, help="written in the input's format; .gz compresses")
    parser.add_argument("--runtime", choices=(AUTO, *RUNTIMES), default=ONNX_INT8,
                        help="as for the endpoint; auto: onnx-int8 when the model folder has it, else torch")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: CPUs available)")
    parser.add_argument("--window", type=int, default=WINDOW, help="rows per model call, length-sorted inside")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("--window must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runtime = resolve_runtime(args.model_dir, args.runtime)
        predictor = load_predictor(args.model_dir, runtime, args.threads)
        summary = classify_file(args.input, args.output, predictor, runtime, args.window,
                                hide_progress=None if args.progress else True)
    except (DataError, RuntimeUnavailableError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.__dict__) if args.json else "\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
