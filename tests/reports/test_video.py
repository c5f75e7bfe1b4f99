"""The video report's renderer: an MP4 that PyAV opens as H.264 at 1280x720 lasting 30 to 90 s, WebVTT captions
timed to its slides, and a poster; narrated when espeak-ng is installed (.ci/espeak installs it), otherwise silent
with the narration on the slides. And ``make test``'s step that installs espeak-ng (.ci/espeak)."""

from __future__ import annotations

import dataclasses
import html
import os
import shutil
import subprocess
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from matplotlib.image import imread

from northstar.reports.video import (
    Goal,
    Goals,
    Headline,
    MrrChart,
    NarrationUnavailable,
    Recommendations,
    Slide,
    VideoFiles,
    VideoSpec,
    Waterfall,
    render_video,
)

SPEC = VideoSpec(
    title="Acme · March 2026",
    currency="USD",
    exponent=2,
    slides=(
        Slide(
            "headline",
            "MRR at the end of March",
            "Good month: MRR grew to 48,250.00 USD.",
            Headline(4825000, "up 2,150.00 USD (4.7 %) from February"),
        ),
        Slide(
            "mrr_chart",
            "MRR over six months",
            "MRR grew every month since October.",
            MrrChart(
                (
                    ("Oct", 3910000),
                    ("Nov", 4050000),
                    ("Dec", 4180000),
                    ("Jan", 4395000),
                    ("Feb", 4610000),
                    ("Mar", 4825000),
                )
            ),
        ),
        Slide(
            "waterfall",
            "How MRR moved",
            "New customers & expansions brought 4,550.00 USD; churn and contraction took 2,400.00 USD.",
            Waterfall(
                4610000, (("New", 340000), ("Expansion", 115000), ("Contraction", -50000), ("Churn", -190000)), 4825000
            ),
        ),
        Slide(
            "goals",
            "Goals",
            "The MRR goal is on track; the churn goal is at risk.",
            Goals(
                (
                    Goal("MRR at 60,000.00 USD by 2026-06-30", 72.5, "on_track"),
                    Goal("Churn below 2.0 %", 40.0, "at_risk"),
                )
            ),
        ),
        Slide(
            "recommendations",
            "Where to push next",
            "First, win back the two customers who churned on the Basic plan, while the reasons they left are fresh. "
            "Then follow up on the fourteen trials that end next week, because conversion fell this month. "
            "Last, offer the annual plan to the five largest accounts before their renewals come up.",
            Recommendations(
                (
                    "Win back the two customers who churned on the Basic plan.",
                    "Follow up on the 14 trials that end next week.",
                    "Offer the annual plan to the five largest accounts.",
                )
            ),
        ),
    ),
)


@pytest.fixture(scope="module")
def silent(tmp_path_factory: pytest.TempPathFactory) -> VideoFiles:
    return render_video(SPEC, tmp_path_factory.mktemp("silent"), speak=False)


@pytest.fixture(scope="module")
def narrated(tmp_path_factory: pytest.TempPathFactory) -> VideoFiles:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (.ci/espeak installs it)")
    return render_video(SPEC, tmp_path_factory.mktemp("narrated"), speak=None)


def cues(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of a WebVTT file."""
    header, *blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    assert header == "WEBVTT"
    found = []
    for block in blocks:
        _, timing, text = block.split("\n")
        start, end = (seconds(stamp) for stamp in timing.split(" --> "))
        found.append((start, end, html.unescape(text)))
    return found


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def check_video(files: VideoFiles, *, narrated: bool) -> list[tuple[float, float, str]]:
    """What every video must be; answers its cues."""
    timed = cues(files.vtt)
    assert [text for _, _, text in timed] == [slide.narration for slide in SPEC.slides]
    assert timed[0][0] == 0
    for (start, end, _), (next_start, _, _) in pairwise(timed):
        assert start < end == next_start  # increasing, back to back, never overlapping
    assert timed[-1][1] == pytest.approx(files.duration_seconds)
    assert 30 <= files.duration_seconds <= 90
    assert files.narrated is narrated
    with av.open(str(files.mp4)) as container:
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(files.duration_seconds, abs=0.1)
        (video,) = container.streams.video
        assert (video.codec_context.name, video.width, video.height) == ("h264", 1280, 720)
        assert len(container.streams.audio) == (1 if narrated else 0)
        if narrated:
            assert container.streams.audio[0].codec_context.name == "aac"
    return timed


def frames_at(path: Path, times: list[float]) -> list[np.ndarray]:
    """The decoded pictures showing at each of ``times`` (seconds)."""
    pictures = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        for time in times:
            container.seek(int(time / stream.time_base), stream=stream)  # to the key frame before
            frame = next(frame for frame in container.decode(stream) if frame.time + 0.1 > time)
            pictures.append(frame.to_ndarray(format="rgb24"))
    return pictures


def middles(timed: list[tuple[float, float, str]]) -> list[float]:
    return [(start + end) / 2 for start, end, _ in timed]


def caption_band(picture: np.ndarray) -> float:
    """How dark the slide's bottom rows are (0 white, 255 black): the burned-in captions' band is dark."""
    return float(255 - picture[-24:].mean())


def test_silent_video_shows_the_narration_on_its_slides(silent: VideoFiles) -> None:
    timed = check_video(silent, narrated=False)
    first, third = frames_at(silent.mp4, [middles(timed)[0], middles(timed)[2]])
    assert first.shape == (720, 1280, 3)
    assert np.abs(first.astype(int) - third.astype(int)).mean() > 5
    assert caption_band(first) > 150 and caption_band(third) > 150
    # silent, each slide lasts its narration read at 150 words a minute with a pause, six seconds at least
    read = [max(6.0, len(slide.narration.split()) * 60 / 150 + 1.3) for slide in SPEC.slides]
    assert [end - start for start, end, _ in timed] == pytest.approx(read, abs=0.1)


def test_narrated_video_speaks_each_slide(narrated: VideoFiles) -> None:
    timed = check_video(narrated, narrated=True)
    first, third = frames_at(narrated.mp4, [middles(timed)[0], middles(timed)[2]])
    assert np.abs(first.astype(int) - third.astype(int)).mean() > 5
    assert caption_band(first) < 20  # no captions burned in: the player shows the WebVTT file's
    assert np.abs(poster_of(narrated) - first).mean() < 3  # the poster is the headline slide as it shows
    with av.open(str(narrated.mp4)) as container:
        sound = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
        rate = container.streams.audio[0].sample_rate
    # each slide's narration is heard after it appears, in the quiet between two slides nothing is
    for start, end, _ in timed:
        assert np.sqrt(np.mean(sound[int((start + 0.6) * rate) : int((start + 1.6) * rate)] ** 2)) > 0.01
        assert np.abs(sound[int((end - 0.3) * rate) : int((end - 0.05) * rate)]).max() < 0.01


def poster_of(files: VideoFiles) -> np.ndarray:
    return (imread(files.poster)[:, :, :3] * 255).round().astype(int)


def test_the_poster_is_the_headline_slide_without_captions(silent: VideoFiles) -> None:
    poster = poster_of(silent)
    assert poster.shape == (720, 1280, 3)
    assert caption_band(poster) < 20
    first = frames_at(silent.mp4, [1.0])[0].astype(int)
    assert np.abs(poster[:150] - first[:150]).mean() < 3  # the headline slide's header


def short(spec: VideoSpec, narration: str) -> VideoSpec:
    return dataclasses.replace(
        spec, slides=tuple(dataclasses.replace(slide, narration=narration) for slide in spec.slides)
    )


def test_a_short_narration_is_stretched_to_thirty_seconds_and_a_long_one_sped_up_to_ninety(tmp_path: Path) -> None:
    brief = render_video(short(SPEC, "Up."), tmp_path / "brief", speak=False)
    assert brief.duration_seconds == 30
    assert [end - start for start, end, _ in cues(brief.vtt)] == [6.0] * 5

    sixty_words = " ".join(["The month went well and the numbers say so."] * 6) + " Onward and upward, friends."
    long = render_video(short(SPEC, sixty_words), tmp_path / "long", speak=False)
    assert long.duration_seconds == pytest.approx(90, abs=0.1)  # 5 x (24 s + pauses) read faster

    with pytest.raises(ValueError, match="too long for a 90 s video"):
        render_video(short(SPEC, sixty_words * 2), tmp_path / "too-long", speak=False)


def test_narration_asked_for_without_espeak_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NarrationUnavailable, match="install it"):
        render_video(SPEC, tmp_path / "video", speak=True)
    assert not (tmp_path / "video").exists()
    assert render_video(short(SPEC, "Up."), tmp_path / "video").narrated is False  # None: silent without espeak-ng


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Waterfall(100, (("New", 50),), 140), "does not add up"),
        (lambda: Slide("goals", "Goals", "Said.", Headline(1, "x")), "cannot show Headline"),
        (lambda: Slide("headline", "Headline", "  ", Headline(1, "x")), "no narration"),
        (lambda: Recommendations(("a", "b", "c", "d")), "1 to 3 steps"),
        (lambda: Goals(()), "1 to 5 goals"),
        (lambda: MrrChart(()), "at least one point"),
        (lambda: dataclasses.replace(SPEC, slides=SPEC.slides * 4), "1 to 15 slides"),
    ],
)
def test_a_spec_that_cannot_be_shown_is_refused(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


SETUP = Path(__file__).resolve().parents[2] / ".ci" / "espeak"


def setup_script(path: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    """``make test``'s espeak-ng step with ``path`` as PATH."""
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [*prefix, bash, str(SETUP)],
        env={**os.environ, "PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_make_test_goes_on_when_espeak_is_there() -> None:
    result = setup_script(Path(os.environ["PATH"]))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, as CI runs")
def test_make_test_fails_as_root_when_espeak_cannot_be_installed(tmp_path: Path) -> None:
    apt_get = tmp_path / "apt-get"  # an apt-get that fails, as one without a network or a package list would
    apt_get.write_text("#!/bin/sh\nexit 100\n")
    apt_get.chmod(0o755)
    result = setup_script(tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.splitlines()[-1]
        == "espeak-ng could not be installed with apt-get: the video reports would be silent"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="drops from root to nobody with setpriv"
)
def test_make_test_says_how_to_install_espeak_and_goes_on_when_it_cannot(tmp_path: Path) -> None:
    """Not root and no espeak-ng: no install is tried, one line says how, and the tests run (the narrated skipped)."""
    result = setup_script(tmp_path, str(shutil.which("setpriv")), "--reuid=65534", "--regid=65534", "--clear-groups")
    assert result.returncode == 0
    assert result.stderr == (
        "espeak-ng is not installed, so video reports are silent and their narrated test is skipped: "
        "sudo apt-get install espeak-ng\n"
    )
