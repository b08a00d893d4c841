"""Every text key of the app exists in every language, non-empty, with the same {placeholders}."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

I18N = Path(__file__).resolve().parents[3] / "app" / "src" / "i18n"
LANGUAGES = ("en", "es", "de", "zh")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def language_files(language: str) -> list[Path]:
    """The core file (`<lang>.json`: shell and chat) and each area's (`<area>/<lang>.json`)."""
    return [I18N / f"{language}.json", *sorted(I18N.glob(f"*/{language}.json"))]


def messages(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in language_files(language):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), path
        assert not set(data) & set(merged), f"{path}: keys already in another file: {set(data) & set(merged)}"
        merged.update(data)
    return merged


def test_the_language_files_are_exactly_the_supported_languages() -> None:
    assert sorted(p.stem for p in I18N.glob("*.json")) == sorted(LANGUAGES)
    for area in [d for d in I18N.iterdir() if d.is_dir()]:
        assert sorted(p.stem for p in area.glob("*.json")) == sorted(LANGUAGES), area


def test_the_app_merges_every_area_file() -> None:
    """index.svelte.ts imports each area's language files (a file left out would show raw keys)."""
    source = (I18N / "index.svelte.ts").read_text(encoding="utf-8")
    for area in [d.name for d in I18N.iterdir() if d.is_dir()]:
        for language in LANGUAGES:
            assert f'"./{area}/{language}.json"' in source, f"{area}/{language}.json is not imported"


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_every_key_is_in_every_language(language: str) -> None:
    english, other = messages("en"), messages(language)
    assert sorted(set(english) - set(other)) == [], f"missing in {language}.json"
    assert sorted(set(other) - set(english)) == [], f"in {language}.json but not in en.json"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_a_non_empty_string_with_the_english_placeholders(language: str) -> None:
    english = messages("en")
    for key, text in messages(language).items():
        assert isinstance(text, str) and text.strip(), f"{language}.json: {key} is empty"
        wanted = set(PLACEHOLDER.findall(english.get(key, "")))
        assert set(PLACEHOLDER.findall(text)) == wanted, f"{language}.json: {key} placeholders"


def test_the_app_uses_only_keys_that_exist() -> None:
    """Literal t("key") calls in the app's sources name keys of en.json."""
    english = messages("en")
    sources = I18N.parent
    used: set[str] = set()
    for path in [*sources.rglob("*.svelte"), *sources.rglob("*.ts")]:
        if path == I18N / "index.svelte.ts":  # the t() function itself (its comments show the call)
            continue
        used.update(re.findall(r"""\bt\(\s*["']([\w.\-]+)["']""", path.read_text(encoding="utf-8")))
    assert used, "no t(...) calls found"
    assert sorted(used - set(english)) == []
