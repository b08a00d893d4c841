"""Every text key of the app exists in every language, non-empty, with the same {placeholders}."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

I18N = Path(__file__).resolve().parents[3] / "app" / "src" / "i18n"
LANGUAGES = ("en", "es", "de", "zh")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def messages(language: str) -> dict[str, str]:
    data = json.loads((I18N / f"{language}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_language_files_are_exactly_the_supported_languages() -> None:
    assert sorted(p.stem for p in I18N.glob("*.json")) == sorted(LANGUAGES)


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
        if path.parent == I18N:  # the t() function itself (its comments show the call)
            continue
        used.update(re.findall(r"""\bt\(\s*["']([\w.\-]+)["']""", path.read_text(encoding="utf-8")))
    assert used, "no t(...) calls found"
    assert sorted(used - set(english)) == []
