"""TechTranslator's deterministic engine: a sales or customer call (plain text, WebVTT or SRT, with speakers) in,
structured technical requirements out, each quoting its evidence verbatim with character offsets.

Pure and fast (a 60-minute call in well under a second): the transcript is parsed into utterances whose offsets
point into the text as given, split into sentences, and a sentence in which a customer asks for something (a
request cue: "we need", "is there a way", "we can't", "deal-breaker"…) starts a requirement. Sentences of the same
speaker's turn about the same subject join it as further evidence, and requirements about the same subject across
the call are merged. A requirement's title is the asked-for clause; its user story names who asked and, when they
said it, why; its acceptance criteria are the constraints they stated (numbers, "every", "must"); its priority
comes from urgency words; its components from a vocabulary of product areas. Every quote is a slice of the
transcript at its offsets, so it is verbatim by construction, and ``verify_quote`` checks any quote (the language
model's, say) the same way; ``unsupported_numbers`` finds a number a written requirement states that the call does
not. ``duplicates`` finds, for each requirement, the existing work item it most resembles. Every rule is in
docs/devbizops.md ("TechTranslator").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

Priority = Literal["high", "medium", "low"]
Format = Literal["auto", "text", "vtt", "srt"]

TIMING = re.compile(r"^\s*(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-->\s*(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}")
VOICE = re.compile(r"<v(?:\.[^ >]+)?\s+([^>]{1,80})>")
TAG = re.compile(r"</?[a-zA-Z][^>]{0,80}>")
SPEAKER = re.compile(
    r"^\s*(?:\[?\(?\d{1,2}:\d{2}(?::\d{2})?\)?\]?\s*)?"  # "Ana:", "[00:12] Ana Lopez (Acme):", "ana.lopez:"
    r"([A-Z][\w.'\u2019 -]{0,38}?|[a-z][\w.'\u2019-]{0,20})\s*(?:\([^)]{0,60}\))?\s*:\s+"
)
SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")  # may run over a line break within an utterance
REQUEST = re.compile(
    r"\b(?:we (?:really )?(?:need|want)|we(?:'d| would) (?:really )?(?:need|want|like|love)"
    r"|we'?re (?:looking for|missing)"
    r"|(?:our|my|the) [\w-]+(?: [\w-]+)? (?:should|must|needs? to|has to|have to)"
    r"|need (?:a|an|to|the|some)|it(?:'d| would) be (?:great|nice|helpful|useful|amazing)|is there (?:a|any) way"
    r"|are there any plans"
    r"|(?:can|could) (?:you|we|it)|do you (?:have|support|offer)|does it (?:support|have)|we must"
    r"|must (?:have|be|support)"
    r"|has to|have to be able|we require|requirement|missing|(?:doesn't|does not|don't|do not) (?:support|have|let)"
    r"|no way to|we can(?:'t|not)|unable to|wish|blocker|blocking|deal[- ]?breaker|would love|the only thing)\b",
    re.IGNORECASE,
)
CLAUSE_START = re.compile(
    r"^.*?\b(?:(?:blocker|deal[- ]?breaker|problem|issue|thing|priority)(?: for us)? (?:is|are)"
    r"|(?:what|all) (?:we|i) (?:really )?(?:need|want) is"
    r"|must be able to|be able to|need(?:s)?(?: to)?|want(?:s)?(?: to)?|like(?: to)?|love(?: to)?|looking for|missing"
    r"|is there (?:a|any) way to|(?:can|could) (?:you|we|it)|support(?:s)?|have|require(?:s)?"
    r"|we must(?: have| be| support)?|be able to|no way to|can(?:'t|not)|unable to"
    r"|wish(?: (?:it|we|you) (?:could|had|would))?|if (?:you|it|we) (?:could|had))\s+",
    re.IGNORECASE,
)
FILLER = re.compile(
    r"^(?:(?:honestly|so|also|and|but|well|okay|ok|yeah|basically|really|the other thing)[,:]?\s+)+", re.I
)
TITLE_CUT = re.compile(r",|;| but | before | within | so that ")
UNLESS = re.compile(
    r"\b(?:unless|until|without)\s+(?:we|you|it)\s+(?:get|have|has|support|supports|offer|can get)\s+(.+)", re.I
)
BACK_REFERENCE = re.compile(  # "It has to sync every hour", not "It would be nice to have…"
    r"^(?:and |but |also )?(?:it|this|that|they|these|those) (?:has|have|needs?|must|should|will|can)\b", re.I
)
TAIL = re.compile(r"\s+(?:as well|too|also|please|for us)$", re.I)
REASON = re.compile(r"\b(?:so that|so we can|so they can|because|since|otherwise|in order to)\b\s*(.+)", re.IGNORECASE)
CONSTRAINT = re.compile(
    r"\d|\b(?:every|each|all|always|never|at least|at most|within|under|no more than|must|should|before|per)\b",
    re.IGNORECASE,
)
HIGH = re.compile(
    r"\b(?:blocker|blocking|deal[- ]?breaker|must|has to|have to|asap|urgent(?:ly)?|critical"
    r"|can(?:'t|not) (?:sign|buy|move forward|go live|launch|renew)"
    r"|before (?:we|the|our) (?:sign|renew|go live|launch|rollout|contract))",
    re.IGNORECASE,
)
LOW = re.compile(
    r"\b(?:nice to have|eventually|some ?day|not urgent|low priority|no rush|down the road)\b", re.IGNORECASE
)
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOP = frozenset(
    (
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "it's",
        "this",
        "that",
        "these",
        "those",
        "we",
        "we'd",
        "we're",
        "our",
        "us",
        "you",
        "your",
        "they",
        "their",
        "them",
        "i",
        "i'm",
        "me",
        "my",
        "he",
        "she",
        "his",
        "her",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "need",
        "needs",
        "want",
        "wants",
        "like",
        "love",
        "really",
        "just",
        "also",
        "so",
        "very",
        "do",
        "does",
        "did",
        "don't",
        "doesn't",
        "not",
        "no",
        "there",
        "here",
        "what",
        "which",
        "who",
        "how",
        "when",
        "where",
        "why",
        "all",
        "any",
        "some",
        "more",
        "most",
        "other",
        "such",
        "than",
        "too",
        "only",
        "own",
        "same",
        "have",
        "has",
        "had",
        "get",
        "got",
        "make",
        "made",
        "way",
        "able",
        "something",
        "thing",
        "things",
        "kind",
        "lot",
        "bit",
        "great",
        "nice",
        "would've",
        "let",
        "okay",
        "ok",
        "yeah",
        "yes",
        "right",
        "well",
        "um",
        "uh",
        "actually",
        "basically",
    )
)
COMPONENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("authentication", r"\b(?:sso|saml|okta|oidc|single sign[- ]on|login|log in|password|mfa|2fa|scim|azure ad)\b"),
        ("permissions", r"\b(?:roles?|permissions?|rbac|access|admins?|only see|assigned to|visibility)\b"),
        ("data export", r"\b(?:export|exports|csv|excel|download|parquet|data warehouse|snowflake|bigquery)\b"),
        ("API", r"\b(?:api|apis|webhook|webhooks|endpoint|endpoints|graphql|rest api|restful)\b"),
        ("integrations", r"\b(?:integrat\w*|salesforce|hubspot|slack|jira|zapier|sync|connector)\b"),
        ("billing", r"\b(?:billing|invoice|invoices|pricing|payment|payments|subscription|seats)\b"),
        ("reporting", r"\b(?:report|reports|reporting|dashboard|dashboards|chart|charts|analytics|metrics)\b"),
        ("notifications", r"\b(?:notification|notifications|alert|alerts|email|emails|reminder)\b"),
        ("mobile", r"\b(?:mobile|ios|android|iphone|phone app)\b"),
        ("performance", r"\b(?:slow|performance|latency|load time|load in|loads? (?:fast|quickly)|faster|timeouts?)\b"),
        (
            "security",
            r"\b(?:audit logs?|audit trail|encryption|soc ?2|gdpr|hipaa|compliance|security|data residency)\b",
        ),
        ("search", r"\b(?:search|filter|filters|find)\b"),
        ("localization", r"\b(?:language|languages|translation|localiz\w*|currency|currencies|time ?zone)\b"),
    )
)
MERGE_SIMILARITY = 60.0  # token-set ratio (0-100) above which two requirements of one call are one
DUPLICATE_SIMILARITY = 70.0  # above which a requirement is an existing work item's
TITLE_WORDS = 12


@dataclass(frozen=True)
class Utterance:
    speaker: str | None
    start: int  # offsets of its text in the transcript as given
    end: int


@dataclass(frozen=True)
class Quote:
    text: str
    start: int
    end: int
    speaker: str | None = None


@dataclass
class Requirement:
    title: str
    user_story: str
    acceptance_criteria: list[str]
    priority: Priority
    components: list[str]
    requested_by: str | None  # the customer or deal given with the transcript, else the speaker
    quotes: list[Quote]
    words: set[str] = field(default_factory=set, repr=False)
    areas: set[str] = field(default_factory=set, repr=False)


@dataclass(frozen=True)
class Duplicate:
    requirement: int  # its position in the list
    key: str  # the work item's key
    similarity: float  # 0-100


class BadTranscript(ValueError):
    """A transcript that has no text to read."""


def verify_quote(transcript: str, text: str, start: int | None = None) -> Quote | None:
    """The quote at its place in the transcript: at ``start`` when given and exact there, else its first
    occurrence; None when it is not an exact substring (an invented or altered quote)."""
    if not text:
        return None
    if start is not None and transcript[start : start + len(text)] == text:
        return Quote(text, start, start + len(text))
    found = transcript.find(text)
    return Quote(text, found, found + len(text)) if found >= 0 else None


NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[str]:
    return {match.group().replace(",", "").rstrip(".") for match in NUMBER.finditer(text)}


def unsupported_numbers(text: str, transcript: str) -> list[str]:
    """The numbers ``text`` states that the call never does (a written requirement may only repeat the call's)."""
    said = _numbers(transcript)
    return sorted(number for number in _numbers(text) if number not in said)


def detect_format(transcript: str) -> Format:
    head = transcript.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    lines = head.splitlines()
    if len(lines) > 1 and lines[0].strip().isdigit() and TIMING.match(lines[1]):
        return "srt"
    return "text"


def parse(transcript: str, transcript_format: Format = "auto") -> list[Utterance]:
    """The transcript's utterances, with their speakers, as offsets into ``transcript``."""
    kind = detect_format(transcript) if transcript_format == "auto" else transcript_format
    utterances: list[Utterance] = []
    position = 0
    adjacent = False  # the previous line was text of the last utterance: an unlabelled line continues it
    for line in transcript.splitlines(keepends=True):
        start, text = position, line.rstrip("\r\n")
        position += len(line)
        stripped = text.strip()
        cue_line = kind in ("vtt", "srt") and (
            stripped in ("", "WEBVTT")
            or stripped.startswith(("WEBVTT ", "NOTE", "STYLE", "REGION"))
            or bool(TIMING.match(text))
            or (kind == "srt" and stripped.isdigit())
        )
        if cue_line or not stripped:
            adjacent = False
            continue
        speaker = None
        voice = VOICE.search(text)
        label = None if voice else SPEAKER.match(text)
        if voice:
            speaker, body_start = voice.group(1).strip(), voice.end()
        elif label and not REQUEST.search(label.group(1)):
            speaker, body_start = label.group(1).strip(), label.end()
        else:
            body_start = len(text) - len(text.lstrip())
        body = TAG.sub(lambda match: " " * len(match.group()), text[body_start:])
        lead, trail = len(body) - len(body.lstrip()), len(body.rstrip())
        if trail <= lead:
            continue
        begin, end = start + body_start + lead, start + body_start + trail
        if speaker is None and utterances and adjacent:  # a line continuing the turn
            utterances[-1] = Utterance(utterances[-1].speaker, utterances[-1].start, end)
        elif speaker is None and utterances and kind == "text":  # a later unlabelled paragraph: a new turn
            utterances.append(Utterance(utterances[-1].speaker, begin, end))
        else:
            utterances.append(Utterance(speaker, begin, end))
        adjacent = True
    return utterances


def _words(text: str) -> set[str]:
    return {word.rstrip("s") if len(word) > 4 else word for word in WORD.findall(text.lower()) if word not in STOP}


def _clause(sentence: str) -> str:
    """The asked-for thing: the sentence after its request cue, without the reason ("to …" when the cue asks for
    an action: "is there a way to export" gives "to export …")."""
    sentence = FILLER.sub("", sentence)
    head, colon, tail = sentence.partition(":")
    if colon and REQUEST.search(head) and len(tail.split()) >= 3:
        sentence = tail.strip()  # "Data residency is a deal-breaker: all our data must stay in the EU"
    condition = UNLESS.search(sentence)
    if condition:  # "we can't renew unless we get an audit log": the audit log
        return TAIL.sub("", condition.group(1).strip(" ,;:-—.!?\"'"))
    found = CLAUSE_START.match(sentence)
    clause = sentence[found.end() :] if found and found.end() < len(sentence) - 3 else sentence
    clause = FILLER.sub("", clause)
    if found and found.group().rstrip().lower().endswith(" to") and found.end() < len(sentence) - 3:
        clause = "to " + clause
    reason = REASON.search(clause)
    if reason:
        clause = clause[: reason.start()]
    clause = clause.split(", but ", 1)[0]
    return TAIL.sub("", clause.strip(" ,;:-—.!?\"'"))


def _title(clause: str) -> str:
    """The clause up to its first qualification (kept in the criteria), at most ``TITLE_WORDS`` words."""
    clause = clause.removeprefix("to ")
    cut = TITLE_CUT.search(clause)
    if cut and len(clause[: cut.start()].split()) >= 2:
        clause = clause[: cut.start()]
    words = clause.split()
    short = " ".join(words[:TITLE_WORDS]) + ("…" if len(words) > TITLE_WORDS else "")
    return short[:1].upper() + short[1:] if short else "Request"


def _sentences(transcript: str, utterance: Utterance) -> Iterable[Quote]:
    text = transcript[utterance.start : utterance.end]
    for match in SENTENCE.finditer(text):
        lead = len(match.group()) - len(match.group().lstrip())
        body = match.group().strip()
        if len(body) >= 8:
            start = utterance.start + match.start() + lead
            yield Quote(body, start, start + len(body), utterance.speaker)


def translate(
    transcript: str,
    *,
    transcript_format: Format = "auto",
    customer: str | None = None,
    customer_speakers: Sequence[str] = (),
) -> list[Requirement]:
    """The requirements a call asks for, in the order they were first asked."""
    utterances = parse(transcript, transcript_format)
    if not utterances:
        raise BadTranscript("the transcript has no text to read")
    customers = {name.casefold() for name in customer_speakers}
    requirements: list[Requirement] = []
    current: Requirement | None = None
    speaker: str | None = None
    for utterance in utterances:
        if customers and (utterance.speaker or "").casefold() not in customers:
            current = None
            continue
        if utterance.speaker != speaker:
            current, speaker = None, utterance.speaker
        turn: Requirement | None = None  # the requirement this turn has asked for so far
        for sentence in _sentences(transcript, utterance):
            words = _words(sentence.text)
            if REQUEST.search(sentence.text) and words:
                if current is not None and _same_subject(current, sentence.text, words, same_turn=current is turn):
                    _support(current, sentence, words)
                else:
                    current = _merged(requirements, sentence, words, customer)
                turn = current
            elif current is not None and (words & current.words or _components(sentence.text) & current.areas):
                _support(current, sentence, words)
            else:
                current = None
    for requirement in requirements:
        _finish(requirement, transcript)
    return requirements


def _same_subject(requirement: Requirement, text: str, words: set[str], *, same_turn: bool) -> bool:
    """A further request of the same speaker about the same thing: in the same turn, mostly about the same product
    areas (people elaborate: "the blocker is single sign-on. We need SSO with Okta"); in the next, in some of the
    same words, or about the same thing in similar words."""
    areas = _components(text)
    alike = bool(areas and requirement.areas) and len(areas & requirement.areas) * 2 >= len(areas | requirement.areas)
    if same_turn and alike:
        return True
    if not same_turn:
        subject = _words(_clause(text)) or words
        shared = subject & requirement.words
        if BACK_REFERENCE.match(text) or len(shared) * 2 >= len(subject) or (shared and alike):
            return True
    said = " ".join(sorted(_words(_clause(text)) or words))
    return bool(fuzz.token_set_ratio(said, " ".join(sorted(requirement.words))) >= MERGE_SIMILARITY)


def _merged(requirements: list[Requirement], sentence: Quote, words: set[str], customer: str | None) -> Requirement:
    """The requirement this request joins (one about the same subject), or a new one."""
    clause = _clause(sentence.text)
    subject = _words(clause) or words
    for requirement in requirements:
        if fuzz.token_set_ratio(" ".join(sorted(subject)), " ".join(sorted(requirement.words))) >= MERGE_SIMILARITY:
            _support(requirement, sentence, words)
            return requirement
    requirement = Requirement(
        title=_title(clause),
        user_story="",
        acceptance_criteria=[],
        priority="medium",
        components=[],
        requested_by=customer or sentence.speaker,
        quotes=[sentence],
        words=set(subject),
        areas=_components(sentence.text),
    )
    requirements.append(requirement)
    return requirement


def _support(requirement: Requirement, sentence: Quote, words: set[str]) -> None:
    if all(quote.start != sentence.start for quote in requirement.quotes):
        requirement.quotes.append(sentence)
        requirement.words |= words
        requirement.areas |= _components(sentence.text)


def _finish(requirement: Requirement, transcript: str) -> None:
    """The story, criteria, priority and components, from the requirement's quotes."""
    said = " ".join(quote.text for quote in requirement.quotes)
    who = requirement.requested_by or "a customer"
    want = _clause(requirement.quotes[0].text)
    want = _uncapitalised(want) if want else _uncapitalised(requirement.title)
    reason = next(
        (found.group(1).strip(" .!?") for quote in requirement.quotes if (found := REASON.search(quote.text))), None
    )
    requirement.user_story = f"As {who}, I want {want}" + (f", so that {reason}." if reason else ".")
    criteria: list[str] = []
    for quote in requirement.quotes:
        if CONSTRAINT.search(quote.text):
            clause = _clause(quote.text).removeprefix("to ")
            if clause and clause.lower() not in (criterion.lower() for criterion in criteria):
                criteria.append(clause[:1].upper() + clause[1:])
    requirement.acceptance_criteria = criteria or [f"{requirement.title} works for {who}"]
    requirement.priority = "low" if LOW.search(said) else "high" if HIGH.search(said) else "medium"
    requirement.components = [name for name, _ in COMPONENTS if name in _components(said)] or ["product"]
    for quote in requirement.quotes:
        assert transcript[quote.start : quote.end] == quote.text  # verbatim by construction


def _uncapitalised(text: str) -> str:
    """The first letter in lower case, unless the word is an acronym (SSO, CSV)."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _components(text: str) -> set[str]:
    return {name for name, pattern in COMPONENTS if pattern.search(text)}


def duplicates(requirements: Sequence[Requirement], work_items: Sequence[tuple[str, str]]) -> list[Duplicate]:
    """For each requirement, the existing work item (key, title and description) it most resembles, when alike
    enough that it should be added to that item rather than filed again."""
    if not work_items:
        return []
    choices = [" ".join(sorted(_words(text))) for _, text in work_items]
    found = []
    for position, requirement in enumerate(requirements):
        query = " ".join(sorted(_words(requirement.title) or requirement.words))
        best = process.extractOne(query, choices, scorer=fuzz.token_set_ratio, score_cutoff=DUPLICATE_SIMILARITY)
        if best is not None:
            found.append(Duplicate(position, work_items[best[2]][0], round(float(best[1]), 1)))
    return found
