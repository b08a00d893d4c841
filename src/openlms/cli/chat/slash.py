"""The slash commands of `lms chat`'s prompt: parsing and help (the loop runs them)."""

from __future__ import annotations

from dataclasses import dataclass

COMMANDS: dict[str, tuple[str, str]] = {  # name -> (argument, what it does)
    "help": ("", "Show this help."),
    "clear": ("", "Forget the conversation so far (the system prompt stays)."),
    "system-prompt": ("[text]", "Show the system prompt, or replace it with the text."),
    "model": ("[model]", "Show the model, or switch to another (loaded first if need be)."),
    "stats": ("", "Show the stats of the last answer."),
    "exit": ("", "Leave the chat (Ctrl+D, or Ctrl+C twice at the prompt, too)."),
}
ALIASES = {"quit": "exit", "system": "system-prompt", "?": "help"}


@dataclass(frozen=True, slots=True)
class Slash:
    name: str  # a key of COMMANDS, or what the user typed when it is none
    arg: str  # the rest of the line, stripped ("" when none)

    @property
    def known(self) -> bool:
        return self.name in COMMANDS


def parse_slash(line: str) -> Slash | None:
    """`/name rest of line` -> Slash; None for a line that is a message (`//text` sends `/text`)."""
    text = line.strip()
    if not text.startswith("/") or text.startswith("//"):
        return None
    head, _, arg = text[1:].partition(" ")
    name = head.strip().lower()
    return Slash(ALIASES.get(name, name), arg.strip())


def message_text(line: str) -> str:
    """What a line sends to the model: itself, less the escape of a leading `//`."""
    text = line.strip()
    return text[1:] if text.startswith("//") else text


def help_text() -> str:
    width = max(len(f"/{name} {arg}".strip()) for name, (arg, _) in COMMANDS.items())
    lines = [f"  {f'/{name} {arg}'.strip():<{width}}  {does}" for name, (arg, does) in COMMANDS.items()]
    return "\n".join(
        [
            "Commands:",
            *lines,
            "Anything else is sent to the model (start a message with // to send a leading /).",
            "Ctrl+C stops an answer; Ctrl+D, /exit or Ctrl+C twice at the prompt leaves.",
        ]
    )
