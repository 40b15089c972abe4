"""Language and sentiment of what the public writes, offline, and the :class:`Mention` it makes.

Language: the author's declared language wins when it is one of the mission's languages
(``fr-FR`` counts as ``fr``); otherwise ``lingua`` guesses among the mission's languages only, and
answers nothing when the text is too short or the guess too close to call, rather than a wrong
language. Sentiment: VADER's compound score with the lexicon of the message's language
(``vaderSentiment`` for English, ``vaderSentiment_fr`` for French; English for anything else).

The detector and the analyzers are built on first use, once, under a lock: building lingua's
models takes a moment and a collector may run in several threads.
"""

from __future__ import annotations

import html
import importlib
import re
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxima.analytics.model import Mention
from proxima.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from proxima.analytics.model import MentionKind

__all__ = ["Classifier", "Tracking", "hashtags", "strip_html"]

_TAG = re.compile(r"(?<![\w/&#])[#＃](\w*[^\W\d_]\w*)")
_HANDLE = re.compile(r"(?<![\w/])@[\w.-]+(?:@[\w.-]+)?")
_URL = re.compile(r"https?://\S+")
_BREAKS = re.compile(r"<\s*(?:br|/p|/div|/li)\s*/?\s*>", re.IGNORECASE)
_MARKUP = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Tracking:
    """What listening looks for: accounts (handles), hashtags (without ``#``) and keywords."""

    accounts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


def strip_html(content: str) -> str:
    """The text of an HTML fragment (a Mastodon status, an ActivityPub note): no markup, no entities."""
    text = _MARKUP.sub("", _BREAKS.sub("\n", content))
    text = html.unescape(text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


def hashtags(text: str) -> tuple[str, ...]:
    """The hashtags of ``text``, lower case, without ``#``, each once, in order of appearance."""
    return tuple(dict.fromkeys(m.group(1).casefold() for m in _TAG.finditer(text)))


def _normalise_account(account: str) -> str:
    return account.strip().lstrip("@").casefold()


def _local_part(account: str) -> str:
    return account.split("@", 1)[0]


def _matches_account(tracked: str, mentioned: str) -> bool:
    """Whether a tracked handle and a mentioned one are the same account.

    A mention written without a domain (Mastodon's ``acct`` of a local account) matches the
    tracked account of that name on any domain: the collector only sees its own instance's.
    """
    t, m = _normalise_account(tracked), _normalise_account(mentioned)
    if t == m:
        return True
    return "@" not in m and _local_part(t) == m


class Classifier:
    """Language detection and sentiment for the mission's ``languages`` (ISO 639-1 codes).

    ``min_distance`` is lingua's minimum relative distance between the best and the second
    language; ``min_letters`` the letters a text needs (hashtags, handles and links aside) before
    it is worth a guess. Both make short or ambiguous text come out as "unknown" (None).
    """

    def __init__(
        self, languages: Sequence[str] = ("en", "fr"), *, min_distance: float = 0.25, min_letters: int = 12
    ) -> None:
        codes = tuple(dict.fromkeys(self._code(lang) for lang in languages))
        if not codes:
            raise ConfigError("analytics: at least one language is needed to classify mentions")
        self.languages = codes
        self._min_distance = min_distance
        self._min_letters = min_letters
        self._lock = threading.Lock()
        self._detector: Any = None
        self._analyzers: dict[str, Any] = {}

    @staticmethod
    def _code(tag: str) -> str:
        """``fr-FR``, ``fr_CA``, ``FR`` → ``fr``."""
        return re.split(r"[-_]", tag.strip(), maxsplit=1)[0].casefold()

    def _lingua(self) -> Any:
        with self._lock:
            if self._detector is None:
                from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

                wanted = []
                for code in self.languages:
                    iso = getattr(IsoCode639_1, code.upper(), None)
                    if iso is None:
                        raise ConfigError(f"analytics: {code!r} is not a language lingua knows")
                    wanted.append(Language.from_iso_code_639_1(iso))
                builder = (
                    LanguageDetectorBuilder.from_languages(*wanted)
                    if len(wanted) > 1
                    else LanguageDetectorBuilder.from_languages(*wanted, *_one_more(wanted))
                )
                self._detector = builder.with_minimum_relative_distance(self._min_distance).build()
            return self._detector

    def language(self, text: str, declared: str | None) -> tuple[str | None, bool]:
        """``(language, detected)``: the declared language if it is one of ours, else a guess or None."""
        if declared:
            code = self._code(declared)
            if code in self.languages:
                return code, False
        words = _URL.sub(" ", _HANDLE.sub(" ", _TAG.sub(" ", text)))
        if sum(ch.isalpha() for ch in words) < self._min_letters:
            return None, False
        found = self._lingua().detect_language_of(words)
        if found is None:
            return None, False
        code = found.iso_code_639_1.name.casefold()
        return (code, True) if code in self.languages else (None, False)

    def _analyzer(self, lang: str) -> Any:
        key = "fr" if lang == "fr" else "en"
        with self._lock:
            analyzer = self._analyzers.get(key)
            if analyzer is None:
                with warnings.catch_warnings():
                    # fuzzywuzzy, imported by the French lexicon, warns it has no C speedups.
                    warnings.simplefilter("ignore")
                    module = importlib.import_module(
                        "vaderSentiment_fr.vaderSentiment" if key == "fr" else "vaderSentiment.vaderSentiment"
                    )
                analyzer = self._analyzers[key] = module.SentimentIntensityAnalyzer()
        return analyzer

    def sentiment(self, text: str, lang: str | None) -> float:
        """VADER's compound score of ``text`` in [-1, 1], with ``lang``'s lexicon (English otherwise)."""
        if not text.strip():
            return 0.0
        scores = self._analyzer(self._code(lang) if lang else "en").polarity_scores(text)
        return float(scores["compound"])

    def mention(
        self,
        *,
        channel: str,
        uri: str,
        author: str,
        at: datetime,
        text: str,
        tracking: Tracking,
        declared_lang: str | None = None,
        is_html: bool = False,
        tags: Iterable[str] = (),
        mentioned: Iterable[str] = (),
        author_followers: int | None = None,
        kind: MentionKind = "post",
        in_reply_to: str | None = None,
        url: str | None = None,
        likes: int = 0,
        reposts: int = 0,
        replies: int = 0,
    ) -> Mention:
        """A :class:`Mention` from a message's raw fields, with its language, sentiment and matches.

        ``tags`` are hashtags the network lists beside the text (facets, ``tag`` arrays); the
        text's own are added. ``mentioned`` are the handles the network says the message
        mentions; handles written in the text count too.
        """
        plain = strip_html(text) if is_html else text.strip()
        all_tags = tuple(dict.fromkeys([*(t.lstrip("#＃").casefold() for t in tags if t), *hashtags(plain)]))
        handles = [*mentioned, *(m.group() for m in _HANDLE.finditer(plain))]
        accounts = tuple(
            a.strip().casefold() for a in tracking.accounts if any(_matches_account(a, h) for h in handles)
        )
        folded = plain.casefold()
        keywords = tuple(
            k.casefold()
            for k in tracking.keywords
            if re.search(rf"(?<!\w){re.escape(k.casefold())}(?!\w)", folded)
        )
        lang, detected = self.language(plain, declared_lang)
        return Mention(
            channel=channel,
            uri=uri,
            author=author.strip().casefold(),
            at=at,
            text=plain,
            sentiment=self.sentiment(plain, lang),
            lang=lang,
            lang_detected=detected,
            author_followers=author_followers,
            tags=all_tags,
            accounts=accounts,
            keywords=keywords,
            kind=kind,
            in_reply_to=in_reply_to,
            url=url,
            likes=likes,
            reposts=reposts,
            replies=replies,
        )

    def relevant(self, mention: Mention, tracking: Tracking) -> bool:
        """Whether ``mention`` carries a tracked tag, account or keyword."""
        wanted = {t.lstrip("#").casefold() for t in tracking.tags}
        return bool(mention.accounts or mention.keywords or wanted.intersection(mention.tags))


def _one_more(languages: list[Any]) -> list[Any]:
    """lingua needs two languages to choose between: with one, English or French is the other."""
    from lingua import Language

    other = Language.FRENCH if Language.ENGLISH in languages else Language.ENGLISH
    return [other]
