"""The one label map of the project.

UCI category codes map to display names here and nowhere else. Every model artifact stores the
map it was trained with (`labels.json`); inference reads the names from the artifact, never from
this module, so an old artifact keeps answering with the names it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LABELS_FILE = "labels.json"

# Index order is the order of the classifier's output units.
CATEGORY_TO_LABEL: dict[str, str] = {
    "b": "Business",
    "t": "Science",
    "e": "Entertainment",
    "m": "Health",
}


@dataclass(frozen=True)
class LabelMap:
    """Output index <-> label name <-> UCI category code."""

    categories: tuple[str, ...]
    names: tuple[str, ...]

    @classmethod
    def default(cls) -> LabelMap:
        return cls(tuple(CATEGORY_TO_LABEL), tuple(CATEGORY_TO_LABEL.values()))

    def __len__(self) -> int:
        return len(self.names)

    def index_of_category(self, code: str) -> int:
        return self.categories.index(code)

    def name(self, index: int) -> str:
        return self.names[index]

    def category_of_name(self, name: str) -> str:
        """The UCI code of a display name, e.g. a feedback label stored by the API; KeyError if unknown."""
        try:
            return self.categories[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def save(self, model_dir: Path) -> None:
        payload = {"labels": [{"index": i, "category": c, "name": n}
                              for i, (c, n) in enumerate(zip(self.categories, self.names, strict=True))]}
        (Path(model_dir) / LABELS_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, model_dir: Path) -> LabelMap:
        path = Path(model_dir) / LABELS_FILE
        try:
            entries = sorted(json.loads(path.read_text())["labels"], key=lambda e: e["index"])
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{path}: no label map; is this a model folder made by training_jobs.train?") from exc
        return cls(tuple(e["category"] for e in entries), tuple(e["name"] for e in entries))
