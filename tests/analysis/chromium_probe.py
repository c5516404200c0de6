"""Render an HTML page in headless Chromium and read back what it drew (a probe script writes JSON into the DOM).

:func:`chromium` finds the browser; without one, the calling test is skipped locally and fails under CI
(``CI=true``), where the set-up installs it (``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--mute-audio", "--hide-scrollbars",
         "--window-size=1400,1800")

#: installed right after <head>: collects script errors and unhandled promise rejections
ERROR_HOOK = """<script>
window.__dsimErrors = [];
window.addEventListener('error', function (e) { window.__dsimErrors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.__dsimErrors.push('unhandled: ' + e.reason); });
</script>"""

#: appended before </body>: once the page has loaded, writes what every plotly figure drew as JSON
PROBE = """<script>
function dsimProbe() {  // synchronous on purpose: --dump-dom does not wait for GPU read-backs
  var out = {errors: window.__dsimErrors, figures: {},
             externalScripts: document.querySelectorAll('script[src]').length};
  var figures = document.querySelectorAll('.js-plotly-plot');
  for (var f = 0; f < figures.length; f++) {
    var gd = figures[f], info = {};
    try {
      info.traces = gd._fullData.map(function (t) { return {name: t.name, type: t.type, n: t._length}; });
      info.nData = info.traces.reduce(function (s, t) { return s + t.n; }, 0);
      info.svgPoints = gd.querySelectorAll('.scatterlayer path.point').length;
      info.legendItems = gd.querySelectorAll('.legend .traces').length;
      var scene = gd._fullLayout.scene && gd._fullLayout.scene._scene;
      info.gl3d = !!(scene && scene.glplot);
      if (info.gl3d) {  // draw the WebGL scene and read its pixels back in the same task
        scene.glplot.redraw();
        var gl = scene.glplot.gl, w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
        var px = new Uint8Array(w * h * 4), coloured = 0;
        gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
        for (var i = 0; i < px.length; i += 4) {
          if (Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 60) { coloured++; }
        }
        info.canvas = [w, h];
        info.colouredPixels = coloured;  // marker colours, not the grey axes and grid
      } else if (info.traces.length) {  // a real mouse move onto the first point of the last trace (flagged images)
        var last = info.traces.length - 1, point = gd.calcdata[last][0], layout = gd._fullLayout;
        var box0 = gd.getBoundingClientRect();
        var drag = gd.querySelector('.nsewdrag');
        drag.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, cancelable: true,
          clientX: box0.left + layout.xaxis._offset + layout.xaxis.c2p(point.x),
          clientY: box0.top + layout.yaxis._offset + layout.yaxis.c2p(point.y)}));
        var box = document.getElementById('dsim-thumb'), thumb = document.getElementById('dsim-thumb-img');
        info.hover = {shown: box.style.display === 'block',
                      text: document.getElementById('dsim-thumb-text').textContent,
                      thumb: (thumb.getAttribute('src') || '').slice(0, 23), expected: gd.data[last].customdata[0][0],
                      label: (gd.querySelector('.hoverlayer') || {textContent: ''}).textContent};
      }
    } catch (e) { info.error = String(e); }
    out.figures[gd.id] = info;
  }
  var pre = document.createElement('pre'); pre.id = 'dsim-probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
window.addEventListener('load', function () { setTimeout(dsimProbe, 500); });
</script>"""


def chromium() -> str:
    """The Chromium executable; skip (or, under CI, fail) when there is none."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    message = "headless Chromium not found (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {message}; the CI set-up must install it")
    pytest.skip(message)


def probe_page(page: Path, tmp: Path, *, timeout: int = 120) -> dict:
    """Load a copy of ``page`` (with the error hook and the probe) in headless Chromium; return the probe's JSON."""
    text = page.read_text()
    text = text.replace("<head>", "<head>\n" + ERROR_HOOK, 1)
    text = text[: text.rindex("</body>")] + PROBE + "\n</body>" + text[text.rindex("</body>") + len("</body>"):]
    copy = tmp / f"probe_{page.name}"
    copy.write_text(text)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=30000",
                               "--dump-dom", copy.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    found = re.search(r'<pre id="dsim-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe wrote nothing (exit {done.returncode}):\n{done.stderr[-3000:]}"
    import html

    return json.loads(html.unescape(found.group(1)))
