"""A founder's month as a short video: slides drawn with matplotlib, narrated by espeak-ng when it is installed.

Pure: a `VideoSpec` in, an MP4 (H.264, 1280x720, 30 to 90 s), its WebVTT captions and a poster image out; no database,
no network. Speed comes from drawing each slide once and encoding that one picture again and again at a low frame
rate, which an H.264 encoder turns into near-empty frames. Without espeak-ng the video is silent and each slide
carries its narration as a burned-in caption; the WebVTT file is written either way.

Money is given in integer minor units of the spec's currency and written as the coach writes it (``numbers.money``);
chart axes are in major units."""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Literal, NamedTuple

import av
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.image import imsave
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import IdentityTransform

from northstar.core.numbers import money, percent

WIDTH, HEIGHT = 1280, 720
FPS = 10  # a still needs no more; each frame after a slide's first costs the encoder almost nothing
MIN_SLIDE = 6.0  # seconds a slide stays, however short its narration
MIN_TOTAL, MAX_TOTAL = 30.0, 90.0
LEAD, TAIL = 0.5, 0.8  # seconds of quiet before a slide's narration and after it
READING_WPM = 150  # the pace a silent slide's caption is timed for
SPEAKING_WPM = 160  # espeak-ng's pace (its default, 175, is hurried for numbers)
MAX_PACE = 1.5  # a narration too long for MAX_TOTAL is sped up, at most this much
VOICE = "en-us"
SAMPLE_RATE = 22050  # espeak-ng's
MAX_SLIDES = int(MAX_TOTAL // MIN_SLIDE)
# the console's palette (core/console/static/css/console.css): ink on paper, one accent, red for what was lost
INK, MUTED, LINE, WASH, PAPER = "#1b1f24", "#57606a", "#d0d7de", "#eaeef2", "#ffffff"
ACCENT, BAD = "#0b57d0", "#a40e26"
MARGIN = 64  # pixels around the slide's content
MINUS = "\u2212"

GoalStatus = Literal["achieved", "on_track", "at_risk", "missed", "no_data"]
SlideKind = Literal["headline", "mrr_chart", "waterfall", "goals", "recommendations"]
Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Headline:
    amount: int  # minor units: the big number (the month's MRR, say)
    subtitle: str  # the line under it ("up 2,150.00 USD from February")


@dataclass(frozen=True)
class MrrChart:
    points: tuple[tuple[str, int], ...]  # (label, MRR in minor units), oldest first

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("an MRR chart needs at least one point")


@dataclass(frozen=True)
class Waterfall:
    start: int  # MRR at the start of the month, minor units
    steps: tuple[tuple[str, int], ...]  # (label, signed change in minor units), in the order shown
    end: int

    def __post_init__(self) -> None:
        if self.start + sum(amount for _, amount in self.steps) != self.end:
            raise ValueError(
                f"the waterfall does not add up: {self.start} + {sum(a for _, a in self.steps)} != {self.end}"
            )


@dataclass(frozen=True)
class Goal:
    label: str
    percent_done: float  # of the way to the target; shown as is, the bar clamped to 0 to 100
    status: GoalStatus


@dataclass(frozen=True)
class Goals:
    items: tuple[Goal, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.items) <= 5:
            raise ValueError(f"a goals slide shows 1 to 5 goals, not {len(self.items)}")


@dataclass(frozen=True)
class Recommendations:
    items: tuple[str, ...]  # the coach's next steps, most pressing first

    def __post_init__(self) -> None:
        if not 1 <= len(self.items) <= 3:
            raise ValueError(f"a recommendations slide shows 1 to 3 steps, not {len(self.items)}")


SlideValues = Headline | MrrChart | Waterfall | Goals | Recommendations
_KIND_OF: dict[type, SlideKind] = {
    Headline: "headline",
    MrrChart: "mrr_chart",
    Waterfall: "waterfall",
    Goals: "goals",
    Recommendations: "recommendations",
}


@dataclass(frozen=True)
class Slide:
    """One screen of the video."""

    kind: SlideKind
    title: str
    narration: str  # what is said (and captioned) while the slide shows
    values: SlideValues

    def __post_init__(self) -> None:
        if _KIND_OF[type(self.values)] != self.kind:
            raise ValueError(f"a {self.kind} slide cannot show {type(self.values).__name__}")
        if not self.narration.strip():
            raise ValueError(f"the {self.kind} slide has no narration")


@dataclass(frozen=True)
class VideoSpec:
    title: str  # shown small on every slide ("Acme · March 2026")
    currency: str
    exponent: int  # minor-unit digits of the currency (USD 2, JPY 0)
    slides: tuple[Slide, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.slides) <= MAX_SLIDES:
            raise ValueError(
                f"a video has 1 to {MAX_SLIDES} slides ({MIN_SLIDE:.0f} s each at least), not {len(self.slides)}"
            )
        if self.exponent < 0:
            raise ValueError(f"a currency's exponent cannot be negative: {self.exponent}")


@dataclass(frozen=True)
class VideoFiles:
    mp4: Path
    vtt: Path
    poster: Path
    duration_seconds: float
    narrated: bool


class NarrationUnavailable(RuntimeError):
    """Narration was asked for and espeak-ng is not installed."""


def render_video(spec: VideoSpec, directory: Path, *, speak: bool | None = None) -> VideoFiles:
    """Write ``video.mp4``, ``video.vtt`` and ``poster.png`` into ``directory``. ``speak``: narrate with espeak-ng
    when it is on PATH (None), always (True, an error without it) or never (False: silent, captions burned in)."""
    espeak = shutil.which("espeak-ng")
    if speak and espeak is None:
        raise NarrationUnavailable(
            "narration needs espeak-ng, which is not on PATH: install it (apt-get install espeak-ng) "
            "or render a silent video (speak=False)"
        )
    voices = _narrate(espeak, spec) if espeak is not None and speak is not False else None
    if voices is None:
        words = [len(slide.narration.split()) * 60 / READING_WPM for slide in spec.slides]
        pace = _pace(words, limit=MAX_PACE)
        speech = [seconds / pace for seconds in words]
    else:
        speech = [len(voice) / SAMPLE_RATE for voice in voices]
    frames = _frames(speech)
    directory.mkdir(parents=True, exist_ok=True)
    files = VideoFiles(
        directory / "video.mp4",
        directory / "video.vtt",
        directory / "poster.png",
        sum(frames) / FPS,
        voices is not None,
    )
    images = [_draw(spec, number, captions=voices is None) for number in range(len(spec.slides))]
    track = None if voices is None else _soundtrack(voices, frames)
    _encode(files.mp4, images, frames, track)
    files.vtt.write_text(_webvtt(spec, frames), encoding="utf-8")
    poster = next((n for n, slide in enumerate(spec.slides) if slide.kind == "headline"), 0)
    imsave(files.poster, images[poster] if voices is not None else _draw(spec, poster, captions=False))
    return files


# timing


def _narrate(espeak: str, spec: VideoSpec) -> list[npt.NDArray[np.float32]]:
    """Each slide's narration spoken, sped up (at most MAX_PACE) when the video would otherwise last too long."""
    pace = 1.0
    with tempfile.TemporaryDirectory(prefix="northstar-video-") as scratch:
        while True:
            voices = [
                _speak(espeak, slide.narration, round(SPEAKING_WPM * pace), Path(scratch)) for slide in spec.slides
            ]
            faster = _pace([len(voice) / SAMPLE_RATE for voice in voices], limit=MAX_PACE / pace)
            if faster == 1.0:
                return voices
            # espeak-ng's length is not quite proportional to its rate: aim a little faster than needed
            pace = min(MAX_PACE, pace * faster * 1.02)


def _speak(espeak: str, text: str, wpm: int, scratch: Path) -> npt.NDArray[np.float32]:
    path = scratch / "speech.wav"
    done = subprocess.run(  # noqa: S603 - espeak-ng found on PATH; the text goes in on stdin
        [espeak, "-v", VOICE, "-s", str(wpm), "-w", str(path), "--stdin"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    with wave.open(str(path), "rb") as sound:
        if (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) != (1, 2, SAMPLE_RATE):
            raise RuntimeError("espeak-ng wrote audio in an unexpected format")
        samples = np.frombuffer(sound.readframes(sound.getnframes()), dtype="<i2")
    return (samples / 32768.0).astype(np.float32)


def _seconds(speech: float) -> float:
    return max(MIN_SLIDE, LEAD + speech + TAIL)


def _pace(speech: Sequence[float], *, limit: float) -> float:
    """How much faster than ``speech`` (each slide's spoken seconds) the narration must go for the video to last at
    most MAX_TOTAL: 1 when it fits; an error when even ``limit`` times faster is too long."""

    def total(pace: float) -> float:
        return sum(_seconds(seconds / pace) for seconds in speech)

    if total(1.0) <= MAX_TOTAL:
        return 1.0
    if total(limit) > MAX_TOTAL:
        words = round(MAX_TOTAL * READING_WPM / 60)
        raise ValueError(f"the narration is too long for a {MAX_TOTAL:.0f} s video: keep it to about {words} words")
    slow, fast = 1.0, limit
    while fast - slow > 1e-4:
        middle = (slow + fast) / 2
        slow, fast = (slow, middle) if total(middle) <= MAX_TOTAL else (middle, fast)
    return fast


def _frames(speech: Sequence[float]) -> list[int]:
    """Each slide's length in frames: its narration with a pause either side, MIN_SLIDE at least, all of them
    stretched to MIN_TOTAL when shorter; slide changes fall on frames, so captions and audio line up with them."""
    seconds = [_seconds(spoken) for spoken in speech]
    stretch = max(1.0, MIN_TOTAL / sum(seconds))
    ends = [round(end * stretch * FPS) for end in accumulate(seconds)]
    return [end - start for start, end in pairwise([0, *ends])]


def _webvtt(spec: VideoSpec, frames: Sequence[int]) -> str:
    cues = ["WEBVTT", ""]
    start = 0
    for number, (slide, length) in enumerate(zip(spec.slides, frames, strict=True), start=1):
        text = " ".join(slide.narration.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        cues += [str(number), f"{_timestamp(start)} --> {_timestamp(start + length)}", text, ""]
        start += length
    return "\n".join(cues)


def _timestamp(frame: int) -> str:
    milliseconds = frame * 1000 // FPS
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


# encoding


H264Encoder = Literal["libx264", "libopenh264"]
# x264 at "veryfast" (docs/decisions.md: "ultrafast" encodes three times as fast into files nearly three times larger)
H264_ENCODERS: tuple[tuple[H264Encoder, dict[str, str]], ...] = (
    ("libx264", {"preset": "veryfast", "crf": "28", "tune": "stillimage"}),
    ("libopenh264", {"b": "1M"}),
)


def _h264_encoder() -> tuple[H264Encoder, dict[str, str]]:
    """The H.264 encoder this PyAV's FFmpeg has: x264, which PyAV's wheels bundle, or else Cisco's OpenH264."""
    for name, options in H264_ENCODERS:
        try:
            av.Codec(name, "w")
        except av.codec.codec.UnknownCodecError:
            continue
        return name, options
    raise RuntimeError("this PyAV's FFmpeg has no H.264 encoder (libx264 or libopenh264)")


def _soundtrack(voices: Sequence[npt.NDArray[np.float32]], frames: Sequence[int]) -> npt.NDArray[np.float32]:
    """The whole audio track: each slide's narration LEAD seconds after the slide appears, quiet in between."""
    per_frame = SAMPLE_RATE // FPS
    track = np.zeros(sum(frames) * per_frame, dtype=np.float32)
    start = 0
    for voice, length in zip(voices, frames, strict=True):
        begin = start * per_frame + round(LEAD * SAMPLE_RATE)
        end = min(begin + len(voice), (start + length) * per_frame)
        track[begin:end] = voice[: end - begin]
        start += length
    return track


def _encode(path: Path, images: Sequence[Pixels], frames: Sequence[int], track: npt.NDArray[np.float32] | None) -> None:
    """Each slide's picture converted once and sent ``frames`` times with the next timestamp; the audio of a slide
    follows its pictures, so the muxer interleaves without holding the whole video."""
    encoder, options = _h264_encoder()
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as output:
        video = output.add_stream(encoder, rate=FPS, options=options)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.gop_size = 5 * FPS  # a key frame every 5 s for seeking; more would add file size, not time
        audio = None if track is None else output.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        per_frame = SAMPLE_RATE // FPS
        shown = 0
        for image, length in zip(images, frames, strict=True):
            picture = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            for pts in range(shown, shown + length):
                picture.pts = pts
                output.mux(video.encode(picture))
            if audio is not None and track is not None:
                sound = av.AudioFrame.from_ndarray(
                    track[None, shown * per_frame : (shown + length) * per_frame], format="fltp", layout="mono"
                )
                sound.sample_rate, sound.pts = SAMPLE_RATE, shown * per_frame
                output.mux(audio.encode(sound))
            shown += length
        output.mux(video.encode(None))
        if audio is not None:
            output.mux(audio.encode(None))


# drawing


class _Page:
    """One slide being drawn, in pixels from the bottom left: the header (the video's title, the slide's number and
    title), the caption band when captions are burned in, and between them the box the slide's content fills."""

    def __init__(self, spec: VideoSpec, number: int, *, captions: bool) -> None:
        slide = spec.slides[number]
        self.spec = spec
        self.figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100, facecolor=PAPER)
        self.canvas = FigureCanvasAgg(self.figure)
        self.renderer = self.canvas.get_renderer()  # type: ignore[no-untyped-call]
        self.text(MARGIN, HEIGHT - 52, spec.title, self.fit([spec.title], 15, WIDTH - 2 * MARGIN - 120), color=MUTED)
        self.text(WIDTH - MARGIN, HEIGHT - 52, f"{number + 1} / {len(spec.slides)}", 15, color=MUTED, ha="right")
        self.text(
            MARGIN, HEIGHT - 112, slide.title, self.fit([slide.title], 32, WIDTH - 2 * MARGIN, "bold"), weight="bold"
        )
        self.box(MARGIN, HEIGHT - 136, 72, 6, ACCENT)
        self.top = HEIGHT - 176
        self.bottom = self.caption(slide.narration) + 36 if captions else 48
        self.left, self.right = MARGIN, WIDTH - MARGIN

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        color: str = INK,
        weight: str = "normal",
        ha: str = "left",
        va: str = "baseline",
    ) -> None:
        self.figure.text(
            x,
            y,
            text,
            transform=IdentityTransform(),
            fontsize=size,
            color=color,
            weight=weight,
            ha=ha,
            va=va,
            parse_math=False,
            linespacing=1.3,
        )

    def box(self, x: float, y: float, width: float, height: float, color: str) -> None:
        self.figure.add_artist(Rectangle((x, y), width, height, transform=IdentityTransform(), color=color, lw=0))

    def width(self, text: str, size: float, weight: str = "normal") -> float:
        measured, _, _ = self.renderer.get_text_width_height_descent(
            text, FontProperties(size=size, weight=weight), ismath=False
        )
        return float(measured)

    def fit(self, texts: Sequence[str], size: float, width: float, weight: str = "normal", least: float = 10) -> float:
        """The largest font size up to ``size`` (``least`` at the smallest) at which the widest of ``texts`` is at
        most ``width`` pixels. Hinting makes widths not quite proportional to sizes: measured again each step."""
        while size > least:
            widest = max((self.width(text, size, weight) for text in texts), default=0.0)
            if widest <= width:
                break
            size = max(least, math.floor(size * min(width / widest, 0.98) * 10) / 10)
        return size

    def wrap(self, text: str, size: float, width: float, weight: str = "normal") -> list[str]:
        lines: list[str] = []
        for word in text.split():
            if lines and self.width(f"{lines[-1]} {word}", size, weight) <= width:
                lines[-1] += f" {word}"
            else:
                lines.append(word)
        return lines

    @staticmethod
    def line_height(size: float) -> float:
        return size * 100 / 72 * 1.3

    def caption(self, narration: str) -> float:
        """The narration in a dark band at the bottom, as subtitles are; answers the band's height."""
        size, lines = 20.0, self.wrap(narration, 20, WIDTH - 2 * MARGIN)
        while len(lines) > 4 and size > 14:
            size -= 2
            lines = self.wrap(narration, size, WIDTH - 2 * MARGIN)
        height = len(lines) * self.line_height(size) + 36
        self.box(0, 0, WIDTH, height, INK)
        self.text(WIDTH / 2, height / 2, "\n".join(lines), size, color=PAPER, ha="center", va="center")
        return height

    def money(self, minor: int, *, signed: bool = False) -> str:
        sign = (MINUS if minor < 0 else "+") if signed else MINUS if minor < 0 else ""
        return sign + money(minor, self.spec.currency, self.spec.exponent)

    def axes(self, left: float, bottom: float) -> Axes:
        """A chart filling the content box, ``left`` and ``bottom`` pixels kept for its tick labels."""
        x, y = self.left + left, self.bottom + bottom
        axes = self.figure.add_axes(((x / WIDTH), y / HEIGHT, (self.right - x) / WIDTH, (self.top - y) / HEIGHT))
        for side in ("top", "right", "left"):
            axes.spines[side].set_visible(False)
        axes.spines["bottom"].set_color(LINE)
        axes.grid(axis="y", color=LINE, lw=1)
        axes.set_axisbelow(True)
        axes.tick_params(length=0, labelsize=15, labelcolor=MUTED, pad=10)
        return axes

    def money_axis(self, axes: Axes, low: int, high: int) -> None:
        """The y axis from ``low`` to ``high`` (minor units) in major units, its ticks on whole minor units and
        written with as many decimals as their step needs (15,000 but 0.25)."""
        exponent, high = self.spec.exponent, max(high, low + 1)
        ticks = [
            round(tick) for tick in MaxNLocator(nbins=5, integer=True).tick_values(low, high) if low <= tick <= high
        ]
        step = str(ticks[1] - ticks[0] if len(ticks) > 1 else 10**exponent)
        decimals = max(0, exponent - (len(step) - len(step.rstrip("0"))))
        axes.set_ylim(low / 10**exponent, high / 10**exponent)
        axes.set_yticks(
            [tick / 10**exponent for tick in ticks],
            labels=[f"{Decimal(tick).scaleb(-exponent):,.{decimals}f}" for tick in ticks],
        )
        axes.set_ylabel(self.spec.currency, fontsize=15, color=MUTED, labelpad=12)

    def room(self, axes: Axes, low: int, top: int, pixels: float) -> int:
        """The axis' top (minor units) that leaves ``pixels`` above ``top`` for a label."""
        share = min(pixels / axes.bbox.height, 0.5)  # a chart squeezed by a long caption keeps half for bars
        return top + math.ceil(max(top - low, 1) * share / (1 - share))

    def x_labels(self, axes: Axes, labels: Sequence[str]) -> None:
        slot = axes.bbox.width / max(len(labels), 1) * 0.85
        axes.set_xticks(range(len(labels)), labels=labels, fontsize=self.fit(labels, 16, slot), color=INK)

    def pixels(self) -> Pixels:
        self.canvas.draw()  # type: ignore[no-untyped-call]
        return np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()  # type: ignore[no-untyped-call]


def _draw(spec: VideoSpec, number: int, *, captions: bool) -> Pixels:
    page = _Page(spec, number, captions=captions)
    match spec.slides[number].values:
        case Headline() as values:
            _headline(page, values)
        case MrrChart() as values:
            _mrr_chart(page, values)
        case Waterfall() as values:
            _waterfall(page, values)
        case Goals() as values:
            _goals(page, values)
        case Recommendations() as values:
            _recommendations(page, values)
    return page.pixels()


def _headline(page: _Page, values: Headline) -> None:
    amount = page.money(values.amount)
    size = page.fit([amount], 96, page.right - page.left, "bold")
    lines = page.wrap(values.subtitle, 28, page.right - page.left)
    height = size * 100 / 72 + 36 + len(lines) * page.line_height(28)
    top = (page.top + page.bottom + height) / 2
    page.text(WIDTH / 2, top, amount, size, color=ACCENT, weight="bold", ha="center", va="top")
    page.text(WIDTH / 2, top - size * 100 / 72 - 36, "\n".join(lines), 28, ha="center", va="top")


def _mrr_chart(page: _Page, values: MrrChart) -> None:
    axes = page.axes(100, 44)
    scale = 10**page.spec.exponent
    amounts = [amount for _, amount in values.points]
    xs = range(len(amounts))
    ys = [amount / scale for amount in amounts]
    axes.fill_between(xs, ys, color=ACCENT, alpha=0.1, lw=0)
    axes.plot(xs, ys, color=ACCENT, lw=4, marker="o", markersize=10, markerfacecolor=PAPER, markeredgewidth=3)
    low = min(0, *amounts)
    page.money_axis(axes, low, page.room(axes, low, max(0, *amounts), 60))
    page.x_labels(axes, [label for label, _ in values.points])
    axes.set_xlim(-0.4, len(amounts) - 0.6)
    axes.annotate(
        page.money(amounts[-1]),
        (xs[-1], ys[-1]),
        xytext=(0, 20),
        textcoords="offset pixels",
        ha="right" if len(amounts) > 1 else "center",
        fontsize=20,
        weight="bold",
        color=ACCENT,
        parse_math=False,
    )


class _Bar(NamedTuple):
    label: str
    bottom: int  # minor units
    top: int
    color: str
    amount: str  # the money it shows, without its currency


def _waterfall(page: _Page, values: Waterfall) -> None:
    """Start, each movement floating from where the one before left MRR, end; gains in the accent, losses in red."""
    axes = page.axes(100, 44)
    scale = 10**page.spec.exponent
    levels = list(accumulate([values.start, *(amount for _, amount in values.steps)]))  # MRR after each bar
    # the bars start where the axis does: a month's movements are small beside its MRR and a zero-based axis would
    # flatten them; the tick labels say where the axis starts
    spread = max(levels) - min(levels)
    low = max(0, min(levels) - round(spread * 0.6)) if spread else 0

    def shown(minor: int, *, signed: bool = False) -> str:
        return page.money(minor, signed=signed).rsplit(" ", 1)[0]

    bars = [
        _Bar("Start", low, values.start, MUTED, shown(values.start)),
        *(
            _Bar(
                label,
                min(before, before + amount),
                max(before, before + amount),
                ACCENT if amount >= 0 else BAD,
                shown(amount, signed=True),
            )
            for (label, amount), before in zip(values.steps, levels, strict=False)
        ),
        _Bar("End", low, values.end, MUTED, shown(values.end)),
    ]
    # each amount over its currency, so that seven bars' labels fit side by side
    size = page.fit([bar.amount for bar in bars], 16, axes.bbox.width / len(bars) * 0.96, "bold")
    page.money_axis(axes, low, page.room(axes, low, max(levels), 2 * page.line_height(size) + 12))
    page.x_labels(axes, [bar.label for bar in bars])
    axes.set_xlim(-0.5, len(bars) - 0.5)
    for x, bar in enumerate(bars):
        axes.bar(x, (bar.top - bar.bottom) / scale, bottom=bar.bottom / scale, width=0.62, color=bar.color)
        axes.annotate(
            f"{bar.amount}\n{page.spec.currency}",
            (x, bar.top / scale),
            xytext=(0, 8),
            textcoords="offset pixels",
            ha="center",
            va="bottom",
            fontsize=size,
            weight="bold",
            color=INK,
            parse_math=False,
            linespacing=1.2,
        )
    for x, level in enumerate(levels):  # from each bar to the next, at the MRR it left
        axes.plot([x + 0.31, x + 0.69], [level / scale] * 2, color=MUTED, lw=1.5, ls=(0, (2, 2)))


STATUS_WORDS: dict[GoalStatus, str] = {
    "achieved": "achieved",
    "on_track": "on track",
    "at_risk": "at risk",
    "missed": "missed",
    "no_data": "no data yet",
}


def _goals(page: _Page, values: Goals) -> None:
    """A row per goal: its label and how far along it is, over a progress bar; rows and type shrink to fit five."""
    row = min(112.0, (page.top - page.bottom) / len(values.items))
    size, width = min(22.0, row / 5), page.right - page.left
    for n, goal in enumerate(values.items):
        top = page.top - n * row
        done = (
            f"{MINUS if goal.percent_done < 0 else ''}{percent(goal.percent_done)} \u00b7 {STATUS_WORDS[goal.status]}"
        )
        weight = "bold" if goal.status in ("at_risk", "missed") else "normal"
        color = BAD if weight == "bold" else MUTED
        page.text(page.right, top - 0.3 * row, done, size, color=color, weight=weight, ha="right")
        room = width - page.width(done, size, weight) - 32
        page.text(page.left, top - 0.3 * row, goal.label, page.fit([goal.label], size, room, "bold"), weight="bold")
        page.box(page.left, top - 0.72 * row, width, 0.2 * row, WASH)
        page.box(page.left, top - 0.72 * row, width * min(max(goal.percent_done, 0), 100) / 100, 0.2 * row, ACCENT)


def _recommendations(page: _Page, values: Recommendations) -> None:
    """The steps numbered in accent circles, each wrapped beside its number, in the largest size that fits."""
    indent, gap = 84, 32
    width = page.right - page.left - indent
    for size in (26, 24, 22, 20, 18, 16):
        wrapped = [page.wrap(item, size, width) for item in values.items]
        height = sum(len(lines) for lines in wrapped) * page.line_height(size) + gap * (len(wrapped) - 1)
        if height <= page.top - page.bottom:
            break
    top = page.top - max(0.0, (page.top - page.bottom - height) / 3)
    for n, lines in enumerate(wrapped, start=1):
        radius = 26
        page.figure.add_artist(
            Circle((page.left + radius, top - radius + 4), radius, transform=IdentityTransform(), color=ACCENT, lw=0)
        )
        page.text(
            page.left + radius, top - radius + 4, str(n), 22, color=PAPER, weight="bold", ha="center", va="center"
        )
        page.text(page.left + indent, top, "\n".join(lines), size, va="top")
        top -= max(len(lines) * page.line_height(size), 2 * radius) + gap
