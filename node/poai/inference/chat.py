"""The chat template: OpenAI-style messages to the byte prompt the model continues.

The genesis model is byte-level and was trained on docstrings, not dialogues, so the template
is plain text any byte model can read: one ``<|role|>`` line per turn, then the assistant's
header. A reply ends at EOS or where the model starts a new turn (``CHAT_STOP``).
"""

from __future__ import annotations

from typing import Any

ROLES = ("system", "user", "assistant", "developer", "tool")
CHAT_STOP = b"\n<|"


class ChatFormatError(ValueError):
    """Messages that do not have OpenAI's shape."""


def message_text(message: Any, index: int) -> tuple[str, str]:
    """(role, text) of one message; content may be a string or a list of text parts."""
    if not isinstance(message, dict):
        raise ChatFormatError(f"messages[{index}] must be an object")
    role = message.get("role")
    if role not in ROLES:
        raise ChatFormatError(f"messages[{index}].role must be one of {', '.join(ROLES)}")
    content = message.get("content")
    if isinstance(content, str):
        return role, content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" \
                    or not isinstance(part.get("text"), str):
                raise ChatFormatError(f"messages[{index}].content: only text parts are supported")
            parts.append(part["text"])
        return role, "".join(parts)
    if content is None and role == "assistant":
        return role, ""
    raise ChatFormatError(f"messages[{index}].content must be a string or a list of text parts")


def chat_prompt(messages: Any) -> bytes:
    """The prompt bytes of a conversation (UTF-8), ending with the assistant's header."""
    if not isinstance(messages, list) or not messages:
        raise ChatFormatError("messages must be a non-empty array")
    out = []
    for i, m in enumerate(messages):
        role, text = message_text(m, i)
        out.append(f"<|{role}|>\n{text}\n")
    out.append("<|assistant|>\n")
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escaped in the JSON
        raise ChatFormatError(f"messages: text is not valid Unicode ({exc.reason})") from None
