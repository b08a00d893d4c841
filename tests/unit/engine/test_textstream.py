import random

import pytest

from openlms.engine.textstream import StopMatcher, Utf8Stream


def run_stream(pieces: list[str], stops: list[str]) -> tuple[str, str | None]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        match = matcher.push(piece)
        out.append(match.emit)
        if match.stop is not None:
            return "".join(out), match.stop
    out.append(matcher.flush())
    return "".join(out), None


@pytest.mark.parametrize(
    ("text", "stops", "expected", "stop"),
    [
        ("Hello world. END more", ["END"], "Hello world. ", "END"),
        ("no stops here", ["XYZ"], "no stops here", None),
        ("ab<|im_end|>cd", ["<|im_end|>"], "ab", "<|im_end|>"),
        ("first A then B", ["B", "A"], "first ", "A"),
        ("ends with a partial ST", ["STOP"], "ends with a partial ST", None),
        ("overlap aab", ["ab"], "overlap a", "ab"),
    ],
)
def test_stop_strings_found_in_every_split(
    text: str, stops: list[str], expected: str, stop: str | None
) -> None:
    rng = random.Random(0)
    assert run_stream([text], stops) == (expected, stop)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 6))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert run_stream(pieces, stops) == (expected, stop), pieces


def test_stop_string_never_leaks_when_split_char_by_char() -> None:
    text = "The answer is 42.\n\nUser: next"
    emitted, stop = run_stream(list(text), ["\n\nUser:"])
    assert stop == "\n\nUser:"
    assert emitted == "The answer is 42."
    assert "User" not in emitted


def test_no_stops_passes_text_through() -> None:
    matcher = StopMatcher([])
    assert matcher.push("abc").emit == "abc"
    assert matcher.flush() == ""


def test_utf8_stream_holds_incomplete_characters() -> None:
    data = "héllo 👋 wörld".encode()
    for size in (1, 2, 3):
        stream = Utf8Stream()
        parts = [stream.push(data[i : i + size]) for i in range(0, len(data), size)]
        parts.append(stream.flush())
        assert "".join(parts) == "héllo 👋 wörld"
        assert all("\ufffd" not in p for p in parts)


def test_utf8_stream_drops_a_character_cut_at_the_end_and_replaces_invalid_bytes() -> None:
    stream = Utf8Stream()
    assert stream.push(b"ok\xe2\x82") == "ok"
    assert stream.flush() == ""  # max_tokens ended the output inside a character: no stray U+FFFD
    assert stream.push(b"a\xffb") == "a\ufffdb"  # an invalid byte is still shown as such
