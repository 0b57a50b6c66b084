"""The console's texts in every language, from one catalogue folder.

`locales/<language>.yaml` maps dotted keys to texts with `{name}` placeholders. English
is complete by definition; another language may lack a key (it falls back to English)
but may not add one English lacks — `Catalogue.check()` says which (a test runs it).
A capability adding a page adds its keys to the same files.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

__all__ = ["DEFAULT_LANGUAGE", "Catalogue"]

DEFAULT_LANGUAGE = "en"


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = str(value)
    return flat


class Catalogue:
    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        if DEFAULT_LANGUAGE not in texts:
            raise ValueError(f"a catalogue needs {DEFAULT_LANGUAGE!r}")
        self._texts = {language: dict(entries) for language, entries in texts.items()}

    @classmethod
    def load(cls) -> Catalogue:
        """The catalogue of the package's `locales/` folder (read once a process: the
        files are the package's own, and parsing them took a tenth of a platform's
        start)."""
        return cls(_package_texts())

    @property
    def languages(self) -> tuple[str, ...]:
        """English first, then the others by code."""
        return (DEFAULT_LANGUAGE, *sorted(set(self._texts) - {DEFAULT_LANGUAGE}))

    def text(self, language: str, key: str, **params: object) -> str:
        """The text of `key` in `language` (else English, else the key itself)."""
        entries = self._texts.get(language, {})
        text = entries.get(key) or self._texts[DEFAULT_LANGUAGE].get(key) or key
        return text.format(**params) if params else text

    def best(self, accept_language: str) -> str:
        """The language an `Accept-Language` header prefers among ours."""
        ranked: list[tuple[float, str]] = []
        for part in accept_language.split(","):
            tag, _, quality = part.strip().partition(";q=")
            try:
                weight = float(quality) if quality else 1.0
            except ValueError:
                continue
            ranked.append((weight, tag.split("-")[0].strip().lower()))
        for _weight, language in sorted(ranked, key=lambda item: -item[0]):
            if language in self._texts:
                return language
        return DEFAULT_LANGUAGE

    def check(self) -> dict[str, list[str]]:
        """Keys of each other language that English lacks (should be none)."""
        english = set(self._texts[DEFAULT_LANGUAGE])
        return {
            language: sorted(set(entries) - english)
            for language, entries in self._texts.items()
            if set(entries) - english
        }

    def missing(self, language: str) -> list[str]:
        """English keys `language` has no text for (shown in English meanwhile)."""
        return sorted(set(self._texts[DEFAULT_LANGUAGE]) - set(self._texts.get(language, {})))


@cache
def _package_texts() -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = {}
    for entry in (files(__package__) / "locales").iterdir():
        if entry.name.endswith(".yaml"):
            loaded = yaml.load(entry.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
            texts[entry.name.removesuffix(".yaml")] = _flatten(loaded or {})
    return texts


#: libyaml's safe loader where PyYAML was built with it (ten times the pure one's speed).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
