"""The web viewer (client/web/src/viewer) on decrypted studies, in real Chromium.

The studies (tests/browser/viewer_data.py) are uploaded once through the app, and each test opens
one as a person does: the Studies tab's row menu, "Open in new Window", a popup whose files come
decrypted through a port to the app tab's worker. Two tests open the same viewer code on plain
files instead (``/viewer#plain=<json>``, the benchmark's baseline) from a static server of this
module that sends the production security headers.

What the viewer shows is read from its canvas: grey levels sampled at the centre of each image
pixel, located with the viewport's ``data-image-rect``, compared with the DICOM linear window of
the same slice computed with numpy. Sampling at pixel centres makes Cornerstone's linear
interpolation irrelevant (a texel's centre is its own value); what remains is rounding and the
8-bit canvas, so the tolerance is 2 grey levels on average and 6 at most (see
``_assert_matches``). The viewports' data attributes (``data-state``, ``data-image-index``...)
are the viewer's documented state for tests and people.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pydicom
import pytest
from playwright.sync_api import expect
from serve import serve_in_thread

from securepacs.server.edge import security_headers
from tests.browser import viewer_data as data
from tests.browser.app import SLOW, open_viewer, search, sign_up, upload
from tests.browser.conftest import Tab, open_tab

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray
    from playwright.sync_api import Browser, Locator, Page

    from tests.conftest import SmtpInbox
    from tests.live_server import Server

pytestmark = pytest.mark.slow

APP_DIR: Final = Path(__file__).resolve().parents[2] / "client" / "web" / "dist"
ACTIVE: Final = "[data-testid=viewport][data-active=true]"
NO_IMAGE: Final = "Click an image area or choose a series thumbnail, then retry the viewer tool"
# Mean and largest difference in grey levels between the canvas and the reference.
MEAN_TOLERANCE: Final = 2.0
MAX_TOLERANCE: Final = 6.0

MISSING_SERIES: Final = "1.2.826.0.1.3680043.10.1234.9.1"
MISSING_INSTANCE: Final = "1.2.826.0.1.3680043.10.1234.9.2"
STUDIES: Final = {
    "volume": ("VIEWER-VOLUME", data.write_ct_volume),
    "cine": ("VIEWER-CINE", data.write_multiframe),
    "codecs": ("VIEWER-CODECS", data.write_codecs),
    "broken": ("VIEWER-BROKEN", data.write_broken),
}


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three studies, one folder each under one upload folder."""
    root = tmp_path_factory.mktemp("viewer") / "studies"
    for name, (_, write) in STUDIES.items():
        write(root / name)
    return root


@dataclass
class AppViewers:
    """A signed-up account holding the studies; opens them from its Studies tab."""

    tab: Tab
    studies: Path
    windows: list[Page] = field(default_factory=list)

    def open(self, study: str) -> Page:
        page = self.tab.page
        rows = search(page, **{"Patient ID": STUDIES[study][0]})
        assert len(rows) == 1, rows
        viewer = open_viewer(page)
        viewer.on("pageerror", lambda error: self.tab.recorder.errors.append(str(error)))
        viewer.on("console", self.tab.recorder.message)
        self.windows.append(viewer)
        return viewer


@pytest.fixture(scope="module")
def viewers(
    browser: Browser,
    site: Server,
    mail: SmtpInbox,
    studies: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AppViewers]:
    """One account for the module: signed up, the studies uploaded (slow, so done once)."""
    tab = open_tab(browser, tmp_path_factory.mktemp("downloads"))
    try:
        sign_up(tab.page, site, mail, "viewer@example.org", tab.downloads)
        counts = upload(tab.page, studies)
        assert counts["found"].startswith(f"Found {_file_count(studies)} files"), counts
        yield AppViewers(tab, studies)
    finally:
        tab.context.close()


@pytest.fixture
def app_viewers(viewers: AppViewers) -> Iterator[AppViewers]:
    """The module's account; the viewer windows a test opened are closed after it, and no page
    error or CSP refusal may have happened in the app tab or in any of them."""
    recorder = viewers.tab.recorder
    errors, console = len(recorder.errors), len(recorder.console)
    yield viewers
    for window in viewers.windows:
        if not window.is_closed():
            window.close()
    viewers.windows.clear()
    assert recorder.errors[errors:] == []
    assert [line for line in recorder.console[console:] if "Content Security Policy" in line] == []


def _file_count(root: Path) -> int:
    return sum(1 for path in root.rglob("*.dcm"))


# -- reading the viewer --------------------------------------------------------------------------

_SAMPLE_SCRIPT: Final = """
([selector, points]) => {
  const cell = document.querySelector(selector);
  const canvas = cell.querySelector("canvas");
  const ratio = canvas.width / canvas.getBoundingClientRect().width;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  return points.map(([x, y]) => {
    const i = (Math.floor(y * ratio) * canvas.width + Math.floor(x * ratio)) * 4;
    return [pixels[i], pixels[i + 1], pixels[i + 2]];
  });
}
"""

_TWO_FRAMES_SCRIPT: Final = """
() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))
"""

# The red channel of every canvas pixel as a base64 string: as an array of numbers, the
# protocol took about 5 s per call for a 1000 x 630 canvas.
_CANVAS_SCRIPT: Final = """
(selector) => {
  const cell = document.querySelector(selector);
  const canvas = cell.querySelector("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  let text = "";
  for (let i = 0; i < image.data.length; i += 4) text += String.fromCharCode(image.data[i]);
  return { width: canvas.width, height: canvas.height, grey: btoa(text) };
}
"""


def _canvas_grey(viewer: Page, selector: str) -> NDArray[np.uint8]:
    """The grey level (red channel) of every canvas pixel of the viewport, rows x columns."""
    canvas = viewer.evaluate(_CANVAS_SCRIPT, selector)
    grey = np.frombuffer(base64.b64decode(canvas["grey"]), dtype=np.uint8)
    return grey.reshape(canvas["height"], canvas["width"])


def _rect(cell: Locator) -> tuple[float, float, float, float]:
    raw = cell.get_attribute("data-image-rect")
    assert raw is not None, "the viewport reports where its image is"
    x0, y0, x1, y1 = (float(v) for v in raw.split(","))
    return x0, y0, x1, y1


def _pixel_centres(cell: Locator, columns: int, rows: int) -> list[tuple[float, float]]:
    """Canvas CSS coordinates of the centre of every image pixel, row by row."""
    x0, y0, x1, y1 = _rect(cell)
    return [
        (x0 + (i + 0.5) * (x1 - x0) / columns, y0 + (j + 0.5) * (y1 - y0) / rows)
        for j in range(rows)
        for i in range(columns)
    ]


def _shown_grey(
    viewer: Page, columns: int, rows: int, selector: str = ACTIVE
) -> NDArray[np.float64]:
    """The grey level the canvas shows at each image pixel, as a rows x columns array."""
    cell = viewer.locator(selector)
    samples = viewer.evaluate(_SAMPLE_SCRIPT, [selector, _pixel_centres(cell, columns, rows)])
    return np.array([s[0] for s in samples], dtype=np.float64).reshape(rows, columns)


def _assert_matches(shown: NDArray[np.float64], expected: NDArray[np.float64]) -> None:
    difference = np.abs(shown - expected)
    assert difference.mean() <= MEAN_TOLERANCE, f"mean {difference.mean():.2f}"
    assert difference.max() <= MAX_TOLERANCE, (
        f"max {difference.max():.2f} at {np.unravel_index(difference.argmax(), difference.shape)}"
    )


def _ready(viewer: Page, **attributes: str) -> Locator:
    """The active viewport once it is ready with the given data attributes."""
    cell = viewer.locator(ACTIVE)
    expect(cell).to_have_attribute("data-state", "ready", timeout=SLOW)
    for name, value in attributes.items():
        expect(cell).to_have_attribute(f"data-{name.replace('_', '-')}", value, timeout=SLOW)
    # Another frame, so the canvas holds what the attributes describe.
    _next_frame(viewer)
    return cell


def _move(viewer: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Move from ``start`` to ``end`` as a hand does: Cornerstone's tools follow the mouse at
    most once a frame and do not move a handle on a press or release, so the last position
    must be reached a frame before the button changes."""
    for step in range(1, 11):
        viewer.mouse.move(
            start[0] + (end[0] - start[0]) * step / 10, start[1] + (end[1] - start[1]) * step / 10
        )
        time.sleep(0.02)
    _next_frame(viewer)
    viewer.mouse.move(*end)
    _next_frame(viewer)


def _click(viewer: Page) -> None:
    """A click where the mouse is. Cornerstone holds a press for 400 ms in case a second one
    makes it a double click (DOUBLE_CLICK_TOLERANCE_MS in its mouseDownListener), so nothing
    else may happen before that time has passed."""
    viewer.mouse.down()
    _next_frame(viewer)
    viewer.mouse.up()
    time.sleep(0.5)


def _drag(viewer: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move to ``end`` and release there."""
    viewer.mouse.move(*start)
    viewer.mouse.down()
    _move(viewer, start, end)
    # On a busy machine the tool took the last position late: once a rectangle ended at the
    # move before the last one (CI, 646 mm² for 800). Stay still a while before the release.
    time.sleep(0.1)
    _next_frame(viewer)
    viewer.mouse.up()


def _next_frame(viewer: Page) -> None:
    viewer.evaluate(_TWO_FRAMES_SCRIPT)


def _volume_ready(viewer: Page) -> Locator:
    """The volume's stack, sorted (every header read)."""
    return _ready(viewer, series_complete="true", image_count=str(data.SLICES))


def _reference(slice_index: int, width: float, center: float) -> NDArray[np.float64]:
    return data.reference_grey(data.volume_hu()[slice_index], width, center)


# -- the tests over the app ----------------------------------------------------------------------


def test_viewer_first_image_matches_the_reference_then_scrolls_and_windows(
    app_viewers: AppViewers,
) -> None:
    viewer = app_viewers.open("volume")
    expect(viewer.get_by_test_id("patient-name")).to_have_text("Viewer, Volume")
    expect(viewer.get_by_test_id("patient-id")).to_have_text("VIEWER-VOLUME")
    cell = _volume_ready(viewer)
    width, center = data.CT_WINDOW
    expect(cell).to_have_attribute("data-window", f"{width}/{center}")
    # The manifest lists the slices shuffled; the stack is sorted along the slice normal, so
    # Home shows the lowest slice whatever the file names and instance numbers say.
    viewer.keyboard.press("Home")
    _ready(viewer, image_index="0")
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), _reference(0, width, center))

    # The mouse wheel over the image scrolls one slice per step.
    box = cell.bounding_box()
    assert box is not None
    viewer.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    viewer.mouse.wheel(0, 120)
    _ready(viewer, image_index="1")
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), _reference(1, width, center))

    # The keyboard: End, Up, Page Up.
    viewer.keyboard.press("End")
    _ready(viewer, image_index=str(data.SLICES - 1))
    viewer.keyboard.press("ArrowUp")
    _ready(viewer, image_index=str(data.SLICES - 2))
    viewer.keyboard.press("PageUp")
    index = data.SLICES - 12
    _ready(viewer, image_index=str(index))
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), _reference(index, width, center))

    # A preset, then invert: the same slice through another window, then its negative.
    viewer.get_by_label("Window preset").select_option(label="Lung 1500/-600")
    _ready(viewer, window="1500/-600")
    lung = _reference(index, 1500, -600)
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), lung)
    viewer.get_by_role("button", name="Invert").click()
    _ready(viewer, invert="true")
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), 255 - lung)

    # Dragging with Window/Level widens the window; Reset brings back the file's.
    viewer.get_by_role("button", name="Window/Level").click()
    _drag(viewer, (box["x"] + 200, box["y"] + 200), (box["x"] + 300, box["y"] + 200))
    changed = cell.get_attribute("data-window")
    assert changed is not None
    assert float(changed.split("/")[0]) > 1500
    viewer.get_by_role("button", name="Reset").click()
    _ready(viewer, window=f"{width}/{center}", invert="false")
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), _reference(index, width, center))


def test_viewer_measurements_read_millimetres_from_the_pixel_spacing(
    app_viewers: AppViewers,
) -> None:
    viewer = app_viewers.open("volume")
    cell = _volume_ready(viewer)
    box = cell.bounding_box()
    assert box is not None
    centres = _pixel_centres(cell, data.COLUMNS, data.ROWS)

    def at(column: int, row: int) -> tuple[float, float]:
        x, y = centres[row * data.COLUMNS + column]
        return box["x"] + x, box["y"] + y

    # Length from pixel (10, 10) to pixel (10, 50): 40 pixels of 2 mm.
    viewer.get_by_role("button", name="Length", exact=True).click()
    _drag(viewer, at(10, 10), at(10, 50))
    length = viewer.get_by_test_id("measurement").filter(has_text="Length")
    expect(length).to_have_count(1)
    expect(length).to_contain_text(" mm")
    assert float(length.get_attribute("data-value") or "nan") == pytest.approx(
        40 * data.SPACING_MM, abs=0.5
    )
    # A right angle, away from the length (a press on a measurement picks it up instead): up to
    # the vertex, then across.
    viewer.get_by_role("button", name="Angle", exact=True).click()
    _drag(viewer, at(50, 30), at(50, 5))
    _move(viewer, at(50, 5), at(60, 5))
    _click(viewer)
    angle = viewer.get_by_test_id("measurement").filter(has_text="Angle")
    expect(angle).to_contain_text("°")
    assert float(angle.get_attribute("data-value") or "nan") == pytest.approx(90, abs=1.5)
    # A rectangle of 10 x 20 pixels: 20 x 40 mm.
    viewer.get_by_role("button", name="Rectangle", exact=True).click()
    _drag(viewer, at(20, 20), at(30, 40))
    rectangle = viewer.get_by_test_id("measurement").filter(has_text="Rectangle")
    expect(rectangle).to_contain_text("mm²")
    assert float(rectangle.get_attribute("data-value") or "nan") == pytest.approx(800, rel=0.03)
    # A measurement can be removed from the list.
    viewer.get_by_role("button", name="Remove Angle 2").click()
    expect(viewer.get_by_test_id("measurement")).to_have_count(2)
    # The Scroll tool: dragging down moves through the slices.
    viewer.get_by_role("button", name="Scroll", exact=True).click()
    before = int(cell.get_attribute("data-image-index") or "0")
    _drag(viewer, at(32, 5), at(32, 60))
    expect(cell).not_to_have_attribute("data-image-index", str(before))


def test_viewer_tag_browser_lists_the_decrypted_header(app_viewers: AppViewers) -> None:
    viewer = app_viewers.open("volume")
    _volume_ready(viewer)
    viewer.get_by_role("button", name="Tags").click()
    browser = viewer.get_by_test_id("tag-browser")
    expect(browser).to_be_visible()
    name = browser.locator("[data-tag='(0010,0010)']")
    expect(name).to_contain_text("PatientName")
    expect(name).to_contain_text("PN")
    expect(name).to_contain_text(data.VOLUME_PATIENT)
    # Pixel data is left out; the filter narrows the list.
    expect(browser.locator("[data-tag='(7FE0,0010)']")).to_have_count(0)
    # A sequence, its item, and the item's elements indented beneath it.
    sequence = browser.locator("[data-tag='(0008,1032)']")
    expect(sequence).to_contain_text("ProcedureCodeSequence")
    expect(sequence).to_contain_text("1 item")
    expect(browser.locator("tr.depth-1").filter(has_text="Item 1")).to_have_count(1)
    expect(browser.locator("tr.depth-2[data-tag='(0008,0100)']")).to_contain_text("ZZ-VIEWER")
    browser.get_by_label("Filter tags").fill("pixelspacing")
    expect(browser.get_by_test_id("tag-row")).to_have_count(1)
    expect(browser.get_by_test_id("tag-row")).to_contain_text("2\\2")
    browser.get_by_role("button", name="Close").click()
    expect(browser).to_have_count(0)


def test_viewer_cine_plays_the_frames_of_a_multiframe_file(app_viewers: AppViewers) -> None:
    viewer = app_viewers.open("cine")
    cell = _ready(viewer, image_count=str(data.CINE_FRAMES))
    viewer.get_by_label("Frames per second").fill("20")
    viewer.get_by_role("button", name="Play").click()
    expect(cell).to_have_attribute("data-cine", "playing")
    seen: set[str | None] = set()
    deadline = time.monotonic() + 10
    while len(seen) < 5 and time.monotonic() < deadline:
        seen.add(cell.get_attribute("data-image-index"))
        time.sleep(0.05)
    assert len(seen) >= 5, seen
    viewer.get_by_role("button", name="Pause").click()
    expect(cell).not_to_have_attribute("data-cine", "playing")
    stopped = cell.get_attribute("data-image-index")
    time.sleep(0.5)
    assert cell.get_attribute("data-image-index") == stopped


def _bright_box(viewer: Page, selector: str) -> tuple[float, float, float, float, float, float]:
    """Bounding box of the rods (grey > 250) in a view, and the canvas size, in canvas pixels."""
    grey = _canvas_grey(viewer, selector)
    ys, xs = np.nonzero(grey > 250)
    assert xs.size > 0, f"{selector} shows no rod"
    return (
        float(xs.min()),
        float(ys.min()),
        float(xs.max() + 1),
        float(ys.max() + 1),
        grey.shape[1],
        grey.shape[0],
    )


def test_viewer_mpr_shows_three_orthogonal_planes_of_the_volume(app_viewers: AppViewers) -> None:
    viewer = app_viewers.open("volume")
    _volume_ready(viewer)
    viewer.get_by_role("button", name="MPR").click()
    views = viewer.get_by_test_id("mpr-viewport")
    expect(views).to_have_count(3)
    for view in views.all():
        expect(view).to_have_attribute("data-state", "ready", timeout=SLOW)
    _next_frame(viewer)
    # Each plane through the rods' origin shows two of the three rods (3 voxels thick, so
    # 1 voxel before the origin and rod+1 after it): its extents, in mm, along the screen.
    rods = data.ROD_VOXELS
    expected_mm = {
        "axial": ((rods["x"] + 2) * 2.0, (rods["y"] + 2) * 2.0),
        "sagittal": ((rods["y"] + 2) * 2.0, (rods["z"] + 2) * 2.0),
        "coronal": ((rods["x"] + 2) * 2.0, (rods["z"] + 2) * 2.0),
    }
    for orientation, (along_x, along_y) in expected_mm.items():
        selector = f"[data-testid=mpr-viewport][data-orientation={orientation}]"
        x0, y0, x1, y1, _, _ = _bright_box(viewer, selector)
        ratio = (x1 - x0) / (y1 - y0)
        assert ratio == pytest.approx(along_x / along_y, rel=0.12), (orientation, (x0, y0, x1, y1))
    # Orientation, not only shape: +x (patient left) is drawn to the right in the axial and
    # coronal views, +y (posterior) downwards in the axial one, +z (superior) upwards.
    ax = _bright_box(viewer, "[data-testid=mpr-viewport][data-orientation=axial]")
    co = _bright_box(viewer, "[data-testid=mpr-viewport][data-orientation=coronal]")
    sa = _bright_box(viewer, "[data-testid=mpr-viewport][data-orientation=sagittal]")
    for x0, _, x1, _, width, _ in (ax, co):
        assert x0 < width / 2 < x1 and x1 - width / 2 > width / 2 - x0, "the x rod runs right"
    assert ax[1] < ax[5] / 2 and ax[3] - ax[5] / 2 > ax[5] / 2 - ax[1], "the y rod runs down"
    for _, y0, _, y1, _, height in (co, sa):
        assert height / 2 - y0 > y1 - height / 2, "the z rod runs up"
    # Back to the stack.
    viewer.get_by_role("button", name="MPR").click()
    expect(views).to_have_count(0)
    _ready(viewer)


def test_viewer_decodes_every_transfer_syntax_and_names_what_it_cannot(
    app_viewers: AppViewers,
) -> None:
    viewer = app_viewers.open("codecs")
    series = viewer.get_by_test_id("series")
    expect(series).to_have_count(len(data.CODECS) + 2)
    for codec in data.CODECS:
        thumbnail = series.filter(has_text=codec.description)
        thumbnail.click()
        cell = viewer.locator(ACTIVE)
        expect(cell).to_have_attribute(
            "data-series-uid", thumbnail.get_attribute("data-series-uid") or ""
        )
        expect(cell).to_have_attribute("data-state", re.compile("ready|error"), timeout=SLOW)
        assert cell.get_attribute("data-state") == "ready", (codec, cell.inner_text())
        assert _canvas_grey(viewer, ACTIVE).std() > 5, f"{codec.description} renders blank"
    series.filter(has_text=data.MPEG2_DESCRIPTION).click()
    cell = viewer.locator(ACTIVE)
    expect(cell).to_have_attribute("data-state", "error", timeout=SLOW)
    expect(cell.get_by_role("alert")).to_contain_text(
        f"transfer syntax {data.MPEG2_SYNTAX} (MPEG2 Main Profile) is not supported by the viewer"
    )
    expect(cell.get_by_role("alert")).to_contain_text("SOP Instance UID")
    report = series.filter(has_text=data.SR_DESCRIPTION)
    expect(report.get_by_test_id("series-note")).to_contain_text(
        "SR (structured report): listed, but the viewer does not display it."
    )


def test_viewer_showing_the_same_series_again_ends_ready(app_viewers: AppViewers) -> None:
    # The series the viewer opens with, asked for again while it loads (three quick clicks,
    # the first while its first image is still being read) and again once it is shown: each
    # showing ends with the image drawn, not in a stuck "loading" (a CI failure once).
    viewer = app_viewers.open("codecs")
    first = viewer.get_by_test_id("series").filter(has_text=data.CODECS[0].description)
    first.wait_for()
    first.evaluate("(s) => { for (let i = 0; i < 3; i += 1) s.click(); }")
    _ready(viewer)
    first.click()
    cell = _ready(viewer)
    assert cell.get_attribute("data-series-uid") == first.get_attribute("data-series-uid")
    assert _canvas_grey(viewer, ACTIVE).std() > 5, "the series shown again renders blank"


def test_viewer_layouts_thumbnails_and_the_no_image_hint(app_viewers: AppViewers) -> None:
    viewer = app_viewers.open("codecs")
    _ready(viewer)
    viewer.get_by_role("button", name="Layout 2x2").click()
    cells = viewer.get_by_test_id("viewport")
    expect(cells).to_have_count(4)
    # New viewports take the next series; clicking one makes it active, and a thumbnail then
    # loads into it.
    for cell in cells.all():
        expect(cell).to_have_attribute("data-state", "ready", timeout=SLOW)
    cells.nth(3).click()
    expect(cells.nth(3)).to_have_attribute("data-active", "true")
    viewer.get_by_test_id("series").filter(has_text="JPEG-LS lossless").click()
    expect(cells.nth(3)).to_have_attribute("data-state", "ready", timeout=SLOW)
    assert cells.nth(3).get_attribute("data-series-uid") == viewer.get_by_test_id("series").filter(
        has_text="JPEG-LS lossless"
    ).get_attribute("data-series-uid")
    # A viewport with nothing in it: the manual's troubleshooting line.
    viewer.get_by_test_id("series").filter(has_text=data.SR_DESCRIPTION).click()
    expect(cells.nth(3)).to_have_attribute("data-state", "empty")
    viewer.get_by_role("button", name="Invert").click()
    expect(viewer.get_by_test_id("viewer-status")).to_contain_text(NO_IMAGE)
    viewer.get_by_role("button", name="Layout 1x1").click()
    expect(cells).to_have_count(1)
    # Fullscreen puts the whole viewer on the screen, and takes it back.
    viewer.get_by_role("button", name="Fullscreen").click()
    expect(viewer.get_by_role("button", name="Exit fullscreen")).to_be_visible()
    assert viewer.evaluate("() => document.fullscreenElement?.dataset.testid") == "viewer"
    viewer.get_by_role("button", name="Exit fullscreen").click()
    expect(viewer.get_by_role("button", name="Fullscreen")).to_be_visible()


def test_viewer_download_asks_then_opens_the_download_window(app_viewers: AppViewers) -> None:
    viewer = app_viewers.open("cine")
    _ready(viewer)
    viewer.get_by_role("button", name="Download").click()
    dialog = viewer.get_by_role("dialog", name="Download study")
    expect(dialog).to_contain_text("Download this study as a zip?")
    with viewer.expect_popup() as popup:
        dialog.get_by_role("button", name="Download", exact=True).click()
    window = popup.value
    study_id = viewer.url.split("#", 1)[1]
    assert window.url.endswith(f"/download#{study_id}")
    # The download window got its port from this viewer window (a fork of the viewer's own).
    expect(window.get_by_test_id("download-study")).to_contain_text("Viewer, Cine", timeout=SLOW)
    window.close()


def test_viewer_names_an_instance_that_fails_verification(
    app_viewers: AppViewers, site: Server
) -> None:
    # Damage every stored file of the broken study on the server: the worker refuses each, and
    # the viewport says which instance and why instead of staying blank.
    with sqlite3.connect(site.root / "server" / "securepacs.db") as db:
        (study_id,) = db.execute(
            "SELECT id FROM study WHERE instance_count = ?", (data.BROKEN_INSTANCES,)
        ).fetchone()
        blob_ids = [
            row[0] for row in db.execute("SELECT id FROM blob WHERE study_id = ?", (study_id,))
        ]
    assert blob_ids
    for blob_id in blob_ids:
        for part in (site.root / "server" / "blobs").rglob(f"{blob_id}/*"):
            damaged = bytearray(part.read_bytes())
            damaged[len(damaged) // 2] ^= 0xFF
            part.write_bytes(bytes(damaged))
    viewer = app_viewers.open("broken")
    cell = viewer.locator(ACTIVE)
    expect(cell).to_have_attribute("data-state", "error", timeout=SLOW)
    message = cell.get_by_role("alert")
    expect(message).to_contain_text("failed verification")
    uids = {
        str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        for path in (app_viewers.studies / "broken").glob("*.dcm")
    }
    assert any(uid in message.inner_text() for uid in uids), message.inner_text()


def test_viewer_opened_as_the_advanced_viewer_starts_in_mpr(app_viewers: AppViewers) -> None:
    page = app_viewers.tab.page
    search(page, **{"Patient ID": STUDIES["volume"][0]})
    viewer = open_viewer(page, advanced=True)
    viewer.on("pageerror", lambda error: app_viewers.tab.recorder.errors.append(str(error)))
    viewer.on("console", app_viewers.tab.recorder.message)
    app_viewers.windows.append(viewer)
    assert viewer.url.endswith("/mpr")
    views = viewer.get_by_test_id("mpr-viewport")
    expect(views).to_have_count(3, timeout=SLOW)
    for view in views.all():
        expect(view).to_have_attribute("data-state", "ready", timeout=SLOW)
    expect(viewer.get_by_role("button", name="MPR")).to_have_attribute("aria-pressed", "true")


# -- the plain baseline -------------------------------------------------------------------------


class _PlainSite(ThreadingHTTPServer):
    """The viewer page and its bundles from client/web/dist, and the studies unencrypted, with the
    production security headers; counts the requests for each data file."""

    daemon_threads = True

    def __init__(self, studies: Path, views: dict[str, bytes]) -> None:
        self.studies = studies.resolve()
        self.views = views
        self.requests: Counter[str] = Counter()
        super().__init__(("127.0.0.1", 0), _PlainHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _PlainHandler(BaseHTTPRequestHandler):
    server: _PlainSite

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.requests[path] += 1
        body: bytes | None = self.server.views.get(path)
        kind = "application/json"
        if body is None:
            root, relative = APP_DIR.resolve(), path.lstrip("/")
            if path == "/viewer":
                relative = "viewer.html"
            elif path.startswith("/data/"):
                root, relative = self.server.studies, path.removeprefix("/data/")
            candidate = (root / relative).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                body = candidate.read_bytes()
                kind = {
                    ".js": "text/javascript",
                    ".css": "text/css",
                    ".html": "text/html",
                    ".wasm": "application/wasm",
                }.get(candidate.suffix, "application/octet-stream")
        if body is None:
            self.send_response(HTTPStatus.NOT_FOUND)
            body = b"not found"
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in security_headers(False):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture(scope="module")
def plain_site(studies: Path) -> Iterator[_PlainSite]:
    """The plain baseline's static server."""
    if not (APP_DIR / "viewer.html").is_file():
        pytest.skip("client/web/dist is not built: `just web`")
    views = {}
    for name in STUDIES:
        files = sorted((studies / name).glob("*.dcm"))
        views[f"/data/{name}.json"] = json.dumps(data.plain_view(files, f"/data/{name}/")).encode()
    # The cine study for someone whose plan lacks MPR and whose share forbids downloading, with
    # one more instance whose file the server no longer has.
    restricted = data.plain_view(sorted((studies / "cine").glob("*.dcm")), "/data/cine/")
    restricted.update(advanced=False, canDownload=False)
    assert isinstance(restricted["instances"], list)
    restricted["instances"].append(
        {
            "fileId": "f" * 32,
            "seriesUid": MISSING_SERIES,
            "instanceUid": MISSING_INSTANCE,
            "size": 1,
            "url": "/data/gone.dcm",
        }
    )
    views["/data/restricted.json"] = json.dumps(restricted).encode()
    yield from serve_in_thread(_PlainSite(studies, views))


def test_plain_viewer_shows_the_same_files_unencrypted_under_the_csp(
    tab: Tab, plain_site: _PlainSite
) -> None:
    viewer = tab.page
    viewer.goto(f"{plain_site.base_url}/viewer#plain=/data/volume.json")
    _volume_ready(viewer)
    viewer.keyboard.press("Home")
    _ready(viewer, image_index="0")
    width, center = data.CT_WINDOW
    _assert_matches(_shown_grey(viewer, data.COLUMNS, data.ROWS), _reference(0, width, center))
    # Every file was fetched once: the series' headers and the decoded images share the reads.
    files = [path for path in plain_site.requests if path.startswith("/data/volume/")]
    assert len(files) == data.SLICES
    assert all(plain_site.requests[path] == 1 for path in files)


def test_plain_viewer_rereads_files_its_bounded_cache_evicted(
    tab: Tab, plain_site: _PlainSite, studies: Path
) -> None:
    # A cache of 0.05 MiB holds about six of the 8 KB slices: the tag browser on the first slice,
    # evicted by the others long since, reads it from the source again.
    viewer = tab.page
    before = Counter(plain_site.requests)
    viewer.goto(f"{plain_site.base_url}/viewer#plain=/data/volume.json&cache=0.05")
    _volume_ready(viewer)
    viewer.keyboard.press("Home")
    cell = _ready(viewer, image_index="0")
    uid = cell.get_attribute("data-sop-instance-uid")
    viewer.get_by_role("button", name="Tags").click()
    expect(
        viewer.get_by_test_id("tag-browser").locator("[data-tag='(0008,0018)']")
    ).to_contain_text(uid or "?")
    reads = plain_site.requests - before
    assert sum(reads.values()) > data.SLICES + 1, "some file was read twice"
    assert max(reads.values()) >= 2


def test_plain_viewer_respects_the_plan_and_share_and_names_an_unreadable_instance(
    tab: Tab, plain_site: _PlainSite
) -> None:
    viewer = tab.page
    viewer.goto(f"{plain_site.base_url}/viewer#plain=/data/restricted.json")
    _ready(viewer, image_count=str(data.CINE_FRAMES))
    mpr = viewer.get_by_role("button", name="MPR")
    expect(mpr).to_be_disabled()
    expect(mpr).to_have_attribute("title", re.compile("not included in your plan"))
    download = viewer.get_by_role("button", name="Download")
    expect(download).to_be_disabled()
    expect(download).to_have_attribute("title", re.compile("Downloading is not allowed"))
    # The file that cannot be read: its series is listed, and the viewport says which instance
    # failed and why instead of staying blank.
    viewer.get_by_test_id("series").nth(1).click()
    cell = viewer.locator(ACTIVE)
    expect(cell).to_have_attribute("data-state", "error", timeout=SLOW)
    expect(cell.get_by_role("alert")).to_have_text(
        f"Instance {MISSING_INSTANCE} could not be read: the server answered HTTP 404."
    )
