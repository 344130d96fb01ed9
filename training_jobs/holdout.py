"""What no model trains, tunes or calibrates on: the story-disjoint judge, and the publisher-held-out rule.

NLP-100 test shares its five publishers with training, and rows of other publishers from the stories training saw
are nearly as easy (TF-IDF scores like the model there). A feed brings stories the model never saw, so the judge
sets aside whole UCI stories (`story` ids) and whole publishers (docs/training.md). A story is chosen by a salted
SHA-256 of its id, ranked within its category so that every category is judged; only stories with rows from outside
NLP-100's five publishers are candidates, since only those rows can be judged. Each other publisher then goes wholly
to the side that holds most of its rows, so that neither side loses a large publisher. The choice depends on the
ids alone: the same on every machine, seed and run.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

NLP100_PUBLISHERS = frozenset({"Reuters", "Huffington Post", "Businessweek", "Contactmusic.com", "Daily Mail"})
PUBLISHER_SALT = "publisher-holdout"
STORY_SALT = "story-holdout"
# At most this many candidate rows are judged: a few thousand headlines measure a model to about a point, and a
# large corpus (all of newsCorpora.csv) keeps the rest of its stories for training.
JUDGE_MAX_ROWS = 4000


class Placed(Protocol):
    """A row as the rules see it: its category, publisher and story id (empty when unknown)."""

    category: str
    publisher: str
    story: str


def unit(salt: str, name: str) -> float:
    """A fixed pseudo-random number in [0, 1) per name, from SHA-256 (never Python's per-process `hash`)."""
    return int(hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:12], 16) / 16 ** 12


def _check_share(share: float) -> None:
    if not 0 <= share < 1:
        raise ValueError(f"held-out share {share!r} must be in [0, 1)")


def is_held_out(publisher: str, share: float) -> bool:
    """Whether rows of this publisher belong to the publisher-held-out check when `share` of them are held out."""
    _check_share(share)
    if not publisher or publisher in NLP100_PUBLISHERS:
        return False
    return unit(PUBLISHER_SALT, publisher) < share


@dataclass(frozen=True)
class Judge:
    """The judged stories and the judge's publishers; neither may train, tune or calibrate."""

    stories: frozenset[str]
    publishers: frozenset[str]

    def judges(self, row: Placed) -> bool:
        """A row of the judge: a judged story, written by a judge publisher."""
        return row.story in self.stories and row.publisher in self.publishers

    def may_train(self, row: Placed) -> bool:
        """Neither a judged story nor a judge publisher (rows with no story id cannot be placed: they may)."""
        return row.story not in self.stories and row.publisher not in self.publishers

    def holds_out_publisher(self, row: Placed) -> bool:
        """A judge publisher's row of a story training saw: the publisher-held-out check."""
        return row.story not in self.stories and row.publisher in self.publishers


def judged_stories(rows: Iterable[Placed], share: float, max_rows: int = 0) -> frozenset[str]:
    """The lowest-ranked `share` of each category's candidate stories (a story's category: its rows' majority),
    every category's share lowered alike when their candidate rows would pass `max_rows` (0: no cap)."""
    _check_share(share)
    categories: dict[str, Counter[str]] = defaultdict(Counter)
    candidates: Counter[str] = Counter()  # story -> its rows from outside NLP-100's five publishers
    for row in rows:
        if row.story:
            categories[row.story][row.category] += 1
            if row.publisher and row.publisher not in NLP100_PUBLISHERS:
                candidates[row.story] += 1
    by_category: dict[str, list[str]] = defaultdict(list)
    for story in candidates:
        by_category[categories[story].most_common(1)[0][0]].append(story)
    for stories in by_category.values():
        stories.sort(key=lambda story: unit(STORY_SALT, story))
    chosen = _first_share(by_category, share)
    taken = sum(candidates[story] for story in chosen)
    if max_rows and taken > max_rows:
        chosen = _first_share(by_category, share * max_rows / taken)
    return frozenset(chosen)


def _first_share(by_category: dict[str, list[str]], share: float) -> set[str]:
    return {story for stories in by_category.values()
            for story in stories[:math.floor(share * len(stories) + 0.5)]}  # half rounds up: one of one at 0.5


def choose_judge(rows: Iterable[Placed], share: float, max_rows: int = JUDGE_MAX_ROWS) -> Judge:
    """The judge of a pool of rows: its judged stories, and the publishers (outside NLP-100's five) with more rows
    in judged stories than in the others (ties train). Rows that cross the sides neither train nor judge."""
    rows = list(rows)
    stories = judged_stories(rows, share, max_rows)
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for row in rows:
        if row.publisher and row.publisher not in NLP100_PUBLISHERS:
            (inside if row.story in stories else outside)[row.publisher] += 1
    return Judge(stories, frozenset(publisher for publisher, count in inside.items() if count > outside[publisher]))
