"""The headlines a simulated week sends as traffic: labelled rows the current model never trained on, and no judge row.

Training (training_jobs.data) carves the story-disjoint judge out of train + valid + the corpus; two kinds of rows
leave training without joining the judge, and they are this pool:

- `judged_story`: the other publishers' rows of the judge's stories (NLP-100's five publishers among them). They
  are today's news the model has not seen: the same stories the judge asks about, never the judge's headlines or
  publishers. Labelling them can teach the judge's stories; that is what labelling a week of traffic does.
- `seen_story`: the judge publishers' rows of stories training saw (the publisher-held-out check).

Titles that any split holds (train, valid, NLP-100 test, the judge) are dropped, so no pool headline ever trained,
tunes calibration, gates or judges. The pool keeps the true label of each row: the oracle's answers.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.artifact import read_metadata
from training_jobs.data import Example, Splits, normalise_title, splits_of_model
from training_jobs.feedback_export import held_out_titles

JUDGED_STORY, SEEN_STORY = "judged_story", "seen_story"
KINDS = (JUDGED_STORY, SEEN_STORY)


@dataclass(frozen=True)
class PoolRow:
    example: Example
    kind: str  # JUDGED_STORY or SEEN_STORY


def pool_rows(splits: Splits, candidates: Sequence[Example], seed: int, held_out: Set[str] = frozenset()
              ) -> list[PoolRow]:
    """The rows of `candidates` no split holds and not in `held_out` (normalised titles), one per title, shuffled
    with `seed`, each tagged with its kind."""
    taken = {normalise_title(ex.title) for part in (splits.train, splits.valid, splits.test, splits.judge)
             for ex in part} | held_out
    judged = {ex.story for ex in splits.judge if ex.story}
    rows, seen = [], set()
    for ex in candidates:
        key = normalise_title(ex.title)
        if key in taken or key in seen:
            continue
        seen.add(key)
        rows.append(PoolRow(ex, JUDGED_STORY if ex.story in judged else SEEN_STORY))
    random.Random(seed).shuffle(rows)
    return rows


def build_pool(model_dir: Path, data: Path, seed: int, kinds: Set[str] = frozenset(KINDS),
               ) -> tuple[list[PoolRow], dict[str, Any]]:
    """The pool of a model folder (its splits rebuilt from `data`), its rows of `kinds` only (SEEN_STORY alone: no
    label can teach the judge's stories), and a description of it for the report."""
    splits = splits_of_model(model_dir, data)
    # Titles of the data's valid and test files never leave as feedback (training_jobs.feedback_export): nor traffic.
    rows = [row for row in pool_rows(splits, splits.left_out + splits.held_out, seed,
                                     held_out_titles(data, seed_of(model_dir))) if row.kind in kinds]
    counts = Counter(row.kind for row in rows)
    return rows, {"rows": len(rows), "kinds": dict(counts), "seed": seed,
                  "categories": dict(Counter(row.example.category for row in rows)),
                  "judge_rows": len(splits.judge), "judge_stories": len({ex.story for ex in splits.judge}),
                  "pool_stories_in_judge": len({r.example.story for r in rows if r.kind == JUDGED_STORY})}


def seed_of(model_dir: Path) -> int:
    return read_metadata(model_dir)["hyperparameters"]["seed"]
